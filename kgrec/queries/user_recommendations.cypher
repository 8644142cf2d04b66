// A user's recommendations with their scores, best first.
// Parameters: $user (user id), $model (model name; '' = every model), $k (top k per model).
// Neo4j Browser: :param user => '1'; :param model => ''; :param k => 20
MATCH (u:User {id: $user})-[r:RECOMMENDED]->(i:Item)
WHERE ($model = '' OR r.model = $model) AND r.rank <= $k
RETURN r.model AS model, r.rank AS rank, i.id AS item_id, i.name AS name, r.score AS score
ORDER BY model, rank, item_id
