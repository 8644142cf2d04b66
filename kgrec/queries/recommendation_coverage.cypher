// How much of the catalogue model $model recommends: users served, distinct items recommended,
// catalogue size (coverage = items / catalog_items).
// Parameters: $model. Neo4j Browser: :param model => 'default'
MATCH (c:Item)
WITH count(c) AS catalog_items
MATCH (u:User)-[r:RECOMMENDED]->(i:Item)
WHERE r.model = $model
RETURN catalog_items, count(r) AS recommendations, count(DISTINCT u) AS users, count(DISTINCT i) AS items
