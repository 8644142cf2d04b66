// Why $item for $user: users who interacted with $item and share the most items with $user
// (collaborative evidence: user -> item <- similar user -> recommended item). The user's items
// other than $item come first, then the users who share them (counted), then the check that those
// users have $item: each step works on the rows the one before kept.
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)
WHERE j.id <> $item
WITH u, j
MATCH (j)<-[:INTERACTED]-(v)
WHERE v <> u
WITH v, count(DISTINCT j) AS shared_items
MATCH (v)-[:INTERACTED]->(i:Item {id: $item})
RETURN v.id AS user_id, shared_items
ORDER BY shared_items DESC, user_id
LIMIT $limit
