"""kgrec's graph schema, as data (``schema.json``) plus what is generated from it.

Node labels: ``User``, ``Item``, ``Entity`` (attributes and KG entities; ``kind`` says which:
genre, tag, artist, occupation, kg...) and ``Model`` (a model's recommendation totals).
Relationship types: ``INTERACTED`` (user -> item with rating / weight / timestamp), ``RELATED``
(every knowledge edge, its source relation name in the ``relation`` property), ``RECOMMENDED``
(score, rank, model), ``EXPLAINS`` and ``RECOMMENDS`` (model -> item: users, mean score and rank).

The Cypher DDL for each store and the RDF vocabulary are generated here from the schema;
``ladybug.cypher``, ``neo4j.cypher`` and ``vocabulary.ttl`` beside this file are the same text
written out for people (a test keeps them in sync).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

RDF_NAMESPACE = "https://kgrec.dev/schema#"
RDF_DATA_NAMESPACE = "https://kgrec.dev/id/"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The parsed ``schema.json``."""
    return json.loads(resources.files(__name__).joinpath("schema.json").read_text("utf-8"))


def node_labels() -> list[str]:
    return list(schema()["nodes"])


def relationship_types() -> list[str]:
    return list(schema()["relationships"])


def text_template(label: str) -> str:
    """The template the text encoder reads for nodes of ``label`` (``User``/``Item``/``Entity``)."""
    return schema()["nodes"][label]["text_template"]


def relation_type(relation: str) -> str:
    """A source relation name as a Cypher relationship type: ``music.artist.origin`` ->
    ``MUSIC_ARTIST_ORIGIN``; ``has genre`` -> ``HAS_GENRE``. Used for Neo4j only."""
    name = re.sub(r"[^0-9A-Za-z]+", "_", relation).strip("_").upper()
    if not name:
        name = "RELATED"
    if name[0].isdigit():
        name = "R_" + name
    return name


_LADYBUG_TYPES = {"STRING": "STRING", "DOUBLE": "DOUBLE", "INT64": "INT64", "FLOAT[]": "FLOAT[]"}


def ladybug_ddl(embedding_dim: int | None = None) -> list[str]:
    """CREATE statements for the embedded (ladybug / Kùzu dialect) store.

    With ``embedding_dim`` the embedding column is a fixed-size ``FLOAT[d]`` array; without it
    a variable-length list."""
    stmts: list[str] = []
    for label, spec in schema()["nodes"].items():
        cols = []
        for prop, typ in spec["properties"].items():
            t = _LADYBUG_TYPES[typ]
            if typ == "FLOAT[]" and embedding_dim:
                t = f"FLOAT[{embedding_dim}]"
            cols.append(f"{prop} {t}")
        stmts.append(
            f"CREATE NODE TABLE IF NOT EXISTS {label}({', '.join(cols)}, PRIMARY KEY ({spec['key']}))"
        )
    for rel, spec in schema()["relationships"].items():
        pairs = [f"FROM {a} TO {b}" for a in spec["from"] for b in spec["to"]]
        props = [f"{p} {_LADYBUG_TYPES[t]}" for p, t in spec["properties"].items()]
        stmts.append(f"CREATE REL TABLE IF NOT EXISTS {rel}({', '.join(pairs + props)})")
    return stmts


def neo4j_ddl() -> list[str]:
    """Uniqueness constraints and indexes for Neo4j 5 (idempotent)."""
    stmts = []
    for label, spec in schema()["nodes"].items():
        key = spec["key"]
        stmts.append(
            f"CREATE CONSTRAINT {label.lower()}_{key}_unique IF NOT EXISTS "
            f"FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
        )
    stmts.append("CREATE INDEX entity_kind IF NOT EXISTS FOR (n:Entity) ON (n.kind)")
    stmts.append("CREATE INDEX recommended_model IF NOT EXISTS FOR ()-[r:RECOMMENDED]-() ON (r.model)")
    # serves score and rank from the index to queries over one model's edges (top_recommended)
    stmts.append("CREATE INDEX recommended_model_score_rank IF NOT EXISTS "
                 "FOR ()-[r:RECOMMENDED]-() ON (r.model, r.score, r.rank)")
    stmts.append("CREATE INDEX explains_model IF NOT EXISTS FOR ()-[r:EXPLAINS]-() ON (r.model)")
    return stmts


def rdf_vocabulary() -> str:
    """The schema as an RDF vocabulary in Turtle (classes and properties under ``kgrec:``)."""
    lines = [
        f"@prefix kgrec: <{RDF_NAMESPACE}> .",
        "@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
        "",
    ]
    xsd = {"STRING": "xsd:string", "DOUBLE": "xsd:double", "INT64": "xsd:long", "FLOAT[]": "xsd:string"}
    seen: set[str] = set()
    for label, spec in schema()["nodes"].items():
        lines.append(f"kgrec:{label} a rdfs:Class ; rdfs:label \"{label}\" .")
        for prop, typ in spec["properties"].items():
            if prop in seen:
                continue
            seen.add(prop)
            lines.append(f"kgrec:{prop} a rdf:Property ; rdfs:range {xsd[typ]} .")
    for rel, spec in schema()["relationships"].items():
        dom = " , ".join(f"kgrec:{a}" for a in spec["from"])
        rng = " , ".join(f"kgrec:{b}" for b in spec["to"])
        lines.append(f"kgrec:{rel} a rdf:Property ; rdfs:domain {dom} ; rdfs:range {rng} .")
        for prop, typ in spec["properties"].items():
            if prop not in seen:
                seen.add(prop)
                lines.append(f"kgrec:{prop} a rdf:Property ; rdfs:range {xsd[typ]} .")
    return "\n".join(lines) + "\n"


def generated_files() -> dict[str, str]:
    """File name -> content of the human-readable copies kept beside the schema."""
    return {
        "ladybug.cypher": ";\n".join(ladybug_ddl()) + ";\n",
        "neo4j.cypher": ";\n".join(neo4j_ddl()) + ";\n",
        "vocabulary.ttl": rdf_vocabulary(),
    }
