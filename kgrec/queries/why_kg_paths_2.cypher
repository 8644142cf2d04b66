// Why $item for $user: knowledge-graph paths of 2 hops from an item the user interacted with to $item
// (user -INTERACTED-> item -relation- node -relation- $item), in either edge direction, through
// distinct nodes. The node in the middle is an item or an entity (the label lets the embedded store
// read knowledge edges only: its other edge tables all have a user at one end). Read from the
// user's items outwards, then checked against $item (a popular attribute node of $item would
// otherwise bring every item that shares it).
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (i:Item {id: $item})
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)-[r1]-(x:Item|Entity)
WHERE r1.relation IS NOT NULL AND j <> i AND x <> i AND x <> j
WITH i, j, r1, x
MATCH (x)-[r2]-(i)
WHERE r2.relation IS NOT NULL
RETURN j.id AS start_item, j.name AS start_name, r1.relation AS relation_1, x.id AS node_1, x.name AS name_1,
       x.kind AS kind_1, r2.relation AS relation_2
ORDER BY start_item, node_1, relation_1, relation_2
LIMIT $limit
