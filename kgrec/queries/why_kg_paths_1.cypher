// Why $item for $user: knowledge-graph paths of 1 hop from an item the user interacted with to $item
// (user -INTERACTED-> item -relation- $item). Any edge direction.
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)-[r1]-(i:Item {id: $item})
WHERE j.id <> $item AND r1.relation IS NOT NULL
RETURN j.id AS start_item, j.name AS start_name, r1.relation AS relation_1
ORDER BY start_item, relation_1
LIMIT $limit
