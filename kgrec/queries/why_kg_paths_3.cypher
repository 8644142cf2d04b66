// Why $item for $user: knowledge-graph paths of 3 hops from an item the user interacted with to $item
// (user -INTERACTED-> item -relation- node -relation- node -relation- $item), in either edge
// direction, through distinct nodes. Read from $item outwards (WITH after each hop keeps the
// expansion small). The node after the user's item is an item or an entity, as on 2-hop paths
// (the label lets the embedded store read knowledge edges only: its other edge tables all have a
// user at one end). The node before $item carries no label: one there made Neo4j plan the query
// about twice as slow on ML-100K; it is a user only where a knowledge edge joins a user to $item.
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (i:Item {id: $item})-[r3]-(y)
WHERE r3.relation IS NOT NULL AND y <> i
WITH i, y, r3
MATCH (y)-[r2]-(x:Item|Entity)
WHERE r2.relation IS NOT NULL AND x <> i AND x <> y
WITH i, y, r3, x, r2
MATCH (x)-[r1]-(j:Item)
WHERE r1.relation IS NOT NULL AND j <> i AND j <> y AND j <> x
WITH y, r3, x, r2, j, r1
MATCH (u:User {id: $user})-[:INTERACTED]->(j)
RETURN j.id AS start_item, j.name AS start_name, r1.relation AS relation_1, x.id AS node_1, x.name AS name_1,
       x.kind AS kind_1, r2.relation AS relation_2, y.id AS node_2, y.name AS name_2, y.kind AS kind_2,
       r3.relation AS relation_3
ORDER BY start_item, node_1, node_2, relation_1, relation_2, relation_3
LIMIT $limit
