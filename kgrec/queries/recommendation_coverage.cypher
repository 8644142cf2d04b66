// How much of the catalogue model $model recommends: users served, distinct items recommended,
// catalogue size (coverage = items / catalog_items). The model's edges are counted first, the
// catalogue after (the other order took three times as long on the embedded store). RECOMMENDED
// edges only ever run from a User to an Item, so the end nodes carry no label test (on Neo4j one
// label check per end node of every edge: 16 ms p50 with them, 12-14 ms without, on ML-100K).
// Parameters: $model. Neo4j Browser: :param model => 'default'
MATCH (u)-[r:RECOMMENDED]->(i)
WHERE r.model = $model
WITH count(r) AS recommendations, count(DISTINCT u) AS users, count(DISTINCT i) AS items
MATCH (c:Item)
RETURN count(c) AS catalog_items, recommendations, users, items
