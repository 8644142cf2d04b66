// Why $item for $user: users who interacted with $item and share the most items with $user
// (collaborative evidence: user -> item <- similar user -> recommended item).
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)<-[:INTERACTED]-(v:User)-[:INTERACTED]->(i:Item {id: $item})
WHERE v.id <> $user AND j.id <> $item
RETURN v.id AS user_id, count(DISTINCT j) AS shared_items
ORDER BY shared_items DESC, user_id
LIMIT $limit
