// What model $model recommends most: items by how many users got them, with mean score and rank.
// Parameters: $model, $limit. Neo4j Browser: :param model => 'default'; :param limit => 20
MATCH (u:User)-[r:RECOMMENDED]->(i:Item)
WHERE r.model = $model
RETURN i.id AS item_id, i.name AS name, count(r) AS recommendations, avg(r.score) AS mean_score,
       avg(r.rank) AS mean_rank
ORDER BY recommendations DESC, item_id
LIMIT $limit
