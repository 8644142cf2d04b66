// How much of the catalogue model $model recommends: users served, distinct items recommended,
// catalogue size (coverage = items / catalog_items). The model's edges are counted first, the
// catalogue after (the other order took three times as long on the embedded store).
// Parameters: $model. Neo4j Browser: :param model => 'default'
MATCH (u:User)-[r:RECOMMENDED]->(i:Item)
WHERE r.model = $model
WITH count(r) AS recommendations, count(DISTINCT u) AS users, count(DISTINCT i) AS items
MATCH (c:Item)
RETURN count(c) AS catalog_items, recommendations, users, items
