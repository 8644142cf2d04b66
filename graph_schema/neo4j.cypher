CREATE CONSTRAINT user_id_unique IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT item_id_unique IF NOT EXISTS FOR (n:Item) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT entity_id_unique IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT model_id_unique IF NOT EXISTS FOR (n:Model) REQUIRE n.id IS UNIQUE;
CREATE INDEX entity_kind IF NOT EXISTS FOR (n:Entity) ON (n.kind);
CREATE INDEX recommended_model IF NOT EXISTS FOR ()-[r:RECOMMENDED]-() ON (r.model);
CREATE INDEX recommended_model_score_rank IF NOT EXISTS FOR ()-[r:RECOMMENDED]-() ON (r.model, r.score, r.rank);
CREATE INDEX explains_model IF NOT EXISTS FOR ()-[r:EXPLAINS]-() ON (r.model);
