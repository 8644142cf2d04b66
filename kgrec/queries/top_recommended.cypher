// What model $model recommends most: items by how many users got them, with mean score and rank.
// Keeps the model's edges first (WITH ... WHERE: on the embedded store about half the time of a
// filter inside the MATCH), then groups by item node and reads ids and names of the groups only.
// Parameters: $model, $limit. Neo4j Browser: :param model => 'default'; :param limit => 20
MATCH ()-[r:RECOMMENDED]->(i:Item)
WITH r, i
WHERE r.model = $model
WITH i, count(r) AS recommendations, avg(r.score) AS mean_score, avg(r.rank) AS mean_rank
RETURN i.id AS item_id, i.name AS name, recommendations, mean_score, mean_rank
ORDER BY recommendations DESC, item_id
LIMIT $limit
