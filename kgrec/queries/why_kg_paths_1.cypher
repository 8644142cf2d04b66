// Why $item for $user: knowledge-graph paths of 1 hop from an item the user interacted with to $item
// (user -INTERACTED-> item -relation- $item), in either edge direction. Read from $item outwards
// (WITH after each hop keeps the expansion small on both stores).
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (i:Item {id: $item})-[r1]-(j:Item)
WHERE r1.relation IS NOT NULL AND j <> i
WITH j, r1
MATCH (u:User {id: $user})-[:INTERACTED]->(j)
RETURN j.id AS start_item, j.name AS start_name, r1.relation AS relation_1
ORDER BY start_item, relation_1
LIMIT $limit
