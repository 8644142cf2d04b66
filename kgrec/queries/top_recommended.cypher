// What model $model recommends most: items by how many users got them, with mean score and rank.
// Counts per item id first and reads the names of the top $limit items only.
// Parameters: $model, $limit. Neo4j Browser: :param model => 'default'; :param limit => 20
MATCH ()-[r:RECOMMENDED]->(i:Item)
WHERE r.model = $model
WITH i.id AS item_id, count(r) AS recommendations, avg(r.score) AS mean_score, avg(r.rank) AS mean_rank
ORDER BY recommendations DESC, item_id
LIMIT $limit
MATCH (i:Item {id: item_id})
RETURN item_id, i.name AS name, recommendations, mean_score, mean_rank
ORDER BY recommendations DESC, item_id
