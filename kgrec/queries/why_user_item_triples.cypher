// Why $item for $user: the user's own knowledge edges to $item, in either direction (a second
// behaviour such as an artist the user tagged: user -TAGGED-> item), one row per relation.
// Parameters: $user, $item. Neo4j Browser: :param user => '2'; :param item => '52'
MATCH (u:User {id: $user})-[r]-(i:Item {id: $item})
WHERE r.relation IS NOT NULL
RETURN r.relation AS relation, count(r) AS edges
ORDER BY relation
