// Why $item for $user: users who interacted with $item and share the most items with $user
// (collaborative evidence: user -> item <- similar user -> recommended item). One pattern, so that
// each store's planner orders the expansions itself (a version split by WITH into "the user's
// items, their users, then the check for $item" was planned on Neo4j at 13-34 ms in some runs and
// at 500+ ms in another; this one ran at 13-16 ms there and 20 ms on the embedded store).
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)<-[:INTERACTED]-(v:User)-[:INTERACTED]->(i:Item {id: $item})
WHERE j <> i AND v <> u
WITH v, count(DISTINCT j) AS shared_items
RETURN v.id AS user_id, shared_items
ORDER BY shared_items DESC, user_id
LIMIT $limit
