// Why $item for $user: knowledge-graph paths of 2 hops from an item the user interacted with to $item
// (user -INTERACTED-> item -relation- node -relation- $item), in either edge direction, through
// distinct nodes. Read from $item outwards (WITH after each hop keeps the expansion small).
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (i:Item {id: $item})-[r2]-(x)
WHERE r2.relation IS NOT NULL AND x <> i
WITH i, x, r2
MATCH (x)-[r1]-(j:Item)
WHERE r1.relation IS NOT NULL AND j <> i AND j <> x
WITH x, r2, j, r1
MATCH (u:User {id: $user})-[:INTERACTED]->(j)
RETURN j.id AS start_item, j.name AS start_name, r1.relation AS relation_1, x.id AS node_1, x.name AS name_1,
       x.kind AS kind_1, r2.relation AS relation_2
ORDER BY start_item, node_1, relation_1, relation_2
LIMIT $limit
