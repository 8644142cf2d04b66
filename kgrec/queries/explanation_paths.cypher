// The explanation paths published for $user's recommendation of $item (write_explanations):
// one row per node on each path; the path text reads user -> ... -> item.
// Parameters: $user, $item, $model ('' = every model).
// Neo4j Browser: :param user => '1'; :param item => '50'; :param model => ''
MATCH (u:User {id: $user})-[x:EXPLAINS]->(n)
WHERE x.item = $item AND ($model = '' OR x.model = $model)
RETURN x.model AS model, x.rank AS rank, x.path AS path, x.weight AS weight, n.id AS node_id, n.name AS node_name
ORDER BY model, weight DESC, path, node_id
