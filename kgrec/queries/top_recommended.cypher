// What model $model recommends most: items by how many users got them, with mean score and rank.
// Reads the model's summary, a RECOMMENDS edge per recommended item that the store rebuilds from
// the model's RECOMMENDED edges whenever they change, instead of grouping every recommendation
// (ML-100K, 18,860 recommendations, the two queries alternated: Neo4j p50 19 -> 8 ms, embedded
// 13 -> 3 ms).
// The same from the RECOMMENDED edges themselves:
//   MATCH ()-[r:RECOMMENDED]->(i) WHERE r.model = $model
//   RETURN i.id, count(r) AS recommendations, avg(r.score), avg(r.rank) ORDER BY recommendations DESC
// Parameters: $model, $limit. Neo4j Browser: :param model => 'default'; :param limit => 20
MATCH (:Model {id: $model})-[s:RECOMMENDS]->(i)
RETURN i.id AS item_id, i.name AS name, s.users AS recommendations, s.mean_score AS mean_score,
       s.mean_rank AS mean_rank
ORDER BY recommendations DESC, item_id
LIMIT $limit
