// Why $item for $user: attributes (genre, tag, artist, KG entity...) that the item shares with
// items the user interacted with, and how many of those items carry each one.
// Parameters: $user, $item, $limit. Neo4j Browser: :param user => '1'; :param item => '50'; :param limit => 10
MATCH (u:User {id: $user})-[:INTERACTED]->(j:Item)-[r1]->(e:Entity)<-[r2]-(i:Item {id: $item})
WHERE j.id <> $item AND r1.relation IS NOT NULL AND r2.relation IS NOT NULL
RETURN e.id AS entity_id, e.kind AS kind, e.name AS name, r2.relation AS relation,
       count(DISTINCT j) AS items, min(j.id) AS example_item
ORDER BY items DESC, entity_id
LIMIT $limit
