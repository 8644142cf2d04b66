// Why $item for $user: attributes (genre, tag, artist, KG entity...) that the item shares with
// items the user interacted with, and how many of those items carry each one. Read from the
// user's items outwards, then checked against $item, in that order on both stores (Neo4j's
// planner otherwise sometimes starts from $item and expands every item of its attributes).
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (i:Item {id: $item})
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)-[r1]->(e:Entity)
WHERE j <> i AND r1.relation IS NOT NULL
WITH i, j, r1, e
MATCH (e)<-[r2]-(i)
WHERE r2.relation IS NOT NULL
RETURN e.id AS entity_id, e.kind AS kind, e.name AS name, r2.relation AS relation,
       count(DISTINCT j) AS items, min(j.id) AS example_item
ORDER BY items DESC, entity_id
LIMIT $limit
