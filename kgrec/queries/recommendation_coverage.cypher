// How much of the catalogue model $model recommends: users served, distinct items recommended,
// catalogue size (coverage = items / catalog_items). The totals come from the model's Model
// node, which the store rebuilds from its RECOMMENDED edges whenever they change; a model without
// recommendations has none and counts 0.
// Parameters: $model. Neo4j Browser: :param model => 'default'
MATCH (c:Item)
WITH count(c) AS catalog_items
OPTIONAL MATCH (m:Model {id: $model})
RETURN catalog_items, coalesce(m.recommendations, 0) AS recommendations, coalesce(m.users, 0) AS users,
       coalesce(m.items, 0) AS items
