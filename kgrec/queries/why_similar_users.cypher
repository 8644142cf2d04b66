// Why $item for $user: users who interacted with $item and share the most items with $user
// (collaborative evidence: user -> item <- similar user -> recommended item). Counts the shared
// items per user first, then keeps the users who have $item.
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)<-[:INTERACTED]-(v:User)
WHERE v <> u AND j.id <> $item
WITH v, count(DISTINCT j) AS shared_items
MATCH (v)-[:INTERACTED]->(i:Item {id: $item})
RETURN v.id AS user_id, shared_items
ORDER BY shared_items DESC, user_id
LIMIT $limit
