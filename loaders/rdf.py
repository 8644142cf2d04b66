"""RDF in and out, through rdflib (Turtle, N-Triples, N-Quads, TriG, JSON-LD, RDF/XML...).

In: knowledge about your items from any RDF source
    :func:`rdf_triples` reads an RDF file (or an ``rdflib.Graph``) into knowledge triples in
    KnowledgeGraph columns; :func:`from_rdf` adds them to an existing graph. You say which
    resources are your items: ``item_prefix="http://example.org/movie/"`` makes
    ``<http://example.org/movie/1>`` item ``"1"``; ``item_ids={uri: item_id}`` maps them one
    by one (``user_prefix`` / ``user_ids`` likewise for users).

    - an object that is a resource (URI or blank node) becomes an entity of kind ``kg`` whose id
      is the URI written with a prefix of the file (``dbr:Tom_Hanks``), else the full URI;
      its name is its ``rdfs:label`` / ``skos:prefLabel`` / ``schema:name`` / ``foaf:name`` when
      the data has one, else the URI's last segment;
    - an object that is a literal becomes an attribute entity ``<kind>:<value>``, ``kind`` the
      predicate's last segment: ``ex:genre "Action"`` -> ``genre:Action`` (so it joins the
      MovieLens genre attributes);
    - the relation is the predicate with a prefix of the file (``ex:genre``), else the full URI.
    - label predicates never become edges; description predicates (``rdfs:comment``,
      ``schema:description``, ``dcterms:description``, ``dbo:abstract``) are not turned into
      attributes either: both are counted in ``report`` (``rdf_labels_used_as_names``,
      ``rdf_descriptions_skipped``).

    A file that does not parse raises :class:`kgrec.DataError` with the file and line.

Out: :func:`to_rdf` writes a KnowledgeGraph in kgrec's vocabulary (``kgrec.graph_schema``:
    classes ``kgrec:User`` / ``kgrec:Item`` / ``kgrec:Entity`` with ``kgrec:id``, ``kgrec:name``,
    ``kgrec:text``, ``kgrec:kind``; nodes under ``RDF_DATA_NAMESPACE``). Each interaction is a
    direct ``kgrec:INTERACTED`` triple plus an ``rdf:Statement`` carrying ``kgrec:rating`` /
    ``kgrec:weight`` / ``kgrec:timestamp``; each knowledge relation is a property
    ``<RDF_DATA_NAMESPACE>relation/<name>`` declared ``rdfs:subPropertyOf kgrec:RELATED`` with
    its name in ``kgrec:relation``. :func:`read_rdf` reads such a file back into the same graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import rdflib
from rdflib import RDF, RDFS, BNode, Literal as RdfLiteral, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, SDO, SKOS, XSD

from kgrec.errors import DataError
from kgrec.graph_schema import RDF_DATA_NAMESPACE, RDF_NAMESPACE
from kgrec.knowledge_graph import ENTITY_COLUMNS, KnowledgeGraph

from ._kg import KnowledgeTriples

KGREC = Namespace(RDF_NAMESPACE)
DATA = Namespace(RDF_DATA_NAMESPACE)
NODE_CLASS = {"user": KGREC.User, "item": KGREC.Item, "entity": KGREC.Entity}
LABEL_PREDICATES = (RDFS.label, SKOS.prefLabel, SDO.name, URIRef("http://schema.org/name"), FOAF.name)
DESCRIPTION_PREDICATES = (RDFS.comment, SDO.description, URIRef("http://schema.org/description"),
                          DCTERMS.description, URIRef("http://dbpedia.org/ontology/abstract"))
RdfSource = str | Path | rdflib.Graph


# ----------------------------------------------------------------------------------------- parse
def parse_rdf(source: RdfSource, format: str | None = None) -> rdflib.Graph:
    """``source`` parsed into an ``rdflib.Graph`` (a Graph passes through). The format comes
    from the file's extension unless given; errors name the file and the line."""
    if isinstance(source, rdflib.Graph):
        return source
    path = Path(source)
    if not path.exists():
        raise DataError(str(path), None, "file not found", "check the path of the RDF file")
    if path.is_dir():
        raise DataError(str(path), None, "is a directory, not an RDF file", "pass the .ttl/.nt/.jsonld/.rdf file")
    fmt = format or rdflib.util.guess_format(str(path))
    if fmt is None:
        raise DataError(str(path), None, f"cannot tell the RDF format from the extension '{path.suffix}'",
                        "pass format='turtle' (or 'nt', 'json-ld', 'xml', 'trig', 'nquads')")
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(str(path), raw.count(b"\n", 0, exc.start) + 1,
                        f"byte 0x{raw[exc.start]:02x} is not valid UTF-8 (RDF text must be UTF-8)",
                        "re-save the file as UTF-8") from None
    g = rdflib.Graph()
    try:
        g.parse(data=raw, format=fmt, publicID=path.resolve().as_uri())
    except Exception as exc:  # rdflib raises a different type per parser
        line, why = _parse_error(exc, raw, fmt)
        raise DataError(str(path), line, f"not valid {fmt} RDF ({why})",
                        f"fix the syntax at that line, or pass the right format= (guessed '{fmt}')") from None
    return g


def _parse_error(exc: Exception, raw: bytes, fmt: str) -> tuple[int | None, str]:
    msg = str(exc)
    why = msg.strip().splitlines()[0] if msg.strip() else exc.__class__.__name__
    if hasattr(exc, "getLineNumber"):  # RDF/XML (SAX)
        return int(exc.getLineNumber()), getattr(exc, "getMessage", lambda: why)()
    if exc.__class__.__name__ == "JSONDecodeError":
        return int(exc.lineno), exc.msg  # type: ignore[attr-defined]
    m = re.search(r"at line (\d+)", msg)
    if m:  # Turtle / N3 / TriG BadSyntax
        reason = re.search(r"Bad syntax \((.*?)\)", msg)
        return int(m.group(1)), reason.group(1) if reason else why
    if fmt in ("nt", "nt11", "ntriples", "nquads"):  # the line-based parsers do not say where: find it
        for no, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rdflib.Graph().parse(data=line, format=fmt)
            except Exception:
                return no, why
    return None, why


# ----------------------------------------------------------------------------------------- in
def rdf_triples(source: RdfSource, format: str | None = None, *, item_prefix: str | None = None,
                item_ids: Mapping[str, str] | None = None, user_prefix: str | None = None,
                user_ids: Mapping[str, str] | None = None) -> KnowledgeTriples:
    """Knowledge triples of an RDF file or graph, in KnowledgeGraph columns (see module doc).

    Returns ``(entities, triples, report)``. Triples about resources that are neither items,
    users nor objects of other triples are kept as entity-entity edges."""
    g = parse_rdf(source, format)
    src = str(source) if not isinstance(source, rdflib.Graph) else "<rdflib.Graph>"
    if not (item_prefix or item_ids):
        raise DataError(src, None, "no way to tell which resources are your items",
                        "pass item_prefix='http://.../' (the URI before the item id) or item_ids={uri: item_id}")
    nm = g.namespace_manager
    labels: dict[rdflib.term.Node, str] = {}
    for p in LABEL_PREDICATES:
        for s, o in g.subject_objects(p):
            labels.setdefault(s, str(o))

    def node(term: rdflib.term.Node) -> tuple[str, str]:
        if isinstance(term, URIRef):
            u = str(term)
            if item_ids and u in item_ids:
                return "item", str(item_ids[u])
            if item_prefix and u.startswith(item_prefix) and len(u) > len(item_prefix):
                return "item", unquote(u[len(item_prefix):])
            if user_ids and u in user_ids:
                return "user", str(user_ids[u])
            if user_prefix and u.startswith(user_prefix) and len(u) > len(user_prefix):
                return "user", unquote(u[len(user_prefix):])
            return "entity", _short(nm, term)
        return "entity", f"_:{term}"

    rows: list[tuple[str, str, str, str, str]] = []
    ents: dict[str, tuple[str, str]] = {}
    report = {"rdf_labels_used_as_names": 0, "rdf_descriptions_skipped": 0}
    label_set, desc_set = set(LABEL_PREDICATES), set(DESCRIPTION_PREDICATES)
    for s, p, o in g:
        if p in label_set:
            report["rdf_labels_used_as_names"] += 1
            continue
        if p in desc_set:
            report["rdf_descriptions_skipped"] += 1
            continue
        ht, h = node(s)
        if ht == "entity":
            ents.setdefault(h, ("kg", labels.get(s) or _local(s)))
        rel = _short(nm, p)
        if isinstance(o, RdfLiteral):
            kind = _local(p)
            value = str(o).strip()
            t, tt = f"{kind}:{value}", "entity"
            ents.setdefault(t, (kind, value))
        else:
            tt, t = node(o)
            if tt == "entity":
                ents.setdefault(t, ("kg", labels.get(o) or _local(o)))
        rows.append((ht, h, rel, tt, t))
    report = {k: v for k, v in report.items() if v}
    rows.sort()
    triples = pd.DataFrame(rows, columns=["head_type", "head", "relation", "tail_type", "tail"], dtype="string")
    entities = pd.DataFrame([(e, k, n) for e, (k, n) in ents.items()], columns=["entity_id", "kind", "name"],
                            dtype="string")
    return KnowledgeTriples(entities, triples, report)


def from_rdf(kg: KnowledgeGraph, source: RdfSource, format: str | None = None, *, item_prefix: str | None = None,
             item_ids: Mapping[str, str] | None = None, user_prefix: str | None = None,
             user_ids: Mapping[str, str] | None = None,
             on_unknown: Literal["error", "drop"] = "error") -> KnowledgeGraph:
    """A copy of ``kg`` with the knowledge triples of an RDF source added (see module doc).

    Triples naming an item or user that ``kg`` lacks raise :class:`kgrec.DataError`, or with
    ``on_unknown="drop"`` are dropped and counted (``rdf_triples_unknown_node_dropped``).
    Existing node texts are kept (new entities get texts from the schema template); features
    are not carried over since the entity table changes."""
    src = str(source) if not isinstance(source, rdflib.Graph) else "<rdflib.Graph>"
    ents, trip, report = rdf_triples(source, format, item_prefix=item_prefix, item_ids=item_ids,
                                     user_prefix=user_prefix, user_ids=user_ids)
    known = {"item": pd.Index(kg.items["item_id"]), "user": pd.Index(kg.users["user_id"])}
    bad = np.zeros(len(trip), bool)
    for end in ("head", "tail"):
        for t, idx in known.items():
            sel = (trip[f"{end}_type"] == t).to_numpy()
            bad |= sel & ~trip[end].isin(idx).to_numpy()
    if bad.any():
        first = trip[bad].iloc[0]
        if on_unknown != "drop":
            end = "head" if first["head_type"] in known and first["head"] not in known[first["head_type"]] else "tail"
            t = first[f"{end}_type"]
            raise DataError(src, None, f"the triple ({first['head']}, {first['relation']}, {first['tail']}) names "
                            f"{t} '{first[end]}', which the graph does not have ({int(bad.sum())} such triples)",
                            "check item_prefix / item_ids, or pass on_unknown='drop' to skip them")
        report["rdf_triples_unknown_node_dropped"] = int(bad.sum())
        trip = trip[~bad]
        used = pd.Index(pd.concat([trip.loc[trip["head_type"] == "entity", "head"],
                                   trip.loc[trip["tail_type"] == "entity", "tail"]]).unique())
        ents = ents[ents["entity_id"].isin(used)]
    new_ents = ents[~ents["entity_id"].isin(pd.Index(kg.entities["entity_id"]))]
    merged = dict(kg.report)
    for k, v in report.items():
        merged[k] = merged.get(k, 0) + v
    return KnowledgeGraph.build(
        interactions=kg.interactions, users=kg.users, items=kg.items,
        entities=pd.concat([kg.entities, new_ents], ignore_index=True),
        triples=pd.concat([kg.triples, trip], ignore_index=True), name=kg.name, report=merged,
        sources={"triples": src})


def _local(term: rdflib.term.Node) -> str:
    s = str(term).rstrip("/#")
    return re.split(r"[/#:]", s)[-1] or s


def _short(nm: rdflib.namespace.NamespaceManager, term: URIRef) -> str:
    try:
        prefix, _, local = nm.compute_qname(str(term), generate=False)
    except Exception:  # no prefix bound for it
        return str(term)
    return f"{prefix}:{local}" if prefix else str(term)


# ----------------------------------------------------------------------------------------- out
def _uri(kind: str, node_id: str) -> URIRef:
    return URIRef(f"{RDF_DATA_NAMESPACE}{kind}/{quote(str(node_id), safe='')}")


def to_rdf(kg: KnowledgeGraph, path: str | Path | None = None, format: str = "turtle", *,
           interactions: bool = True) -> rdflib.Graph:
    """``kg`` as an ``rdflib.Graph`` in kgrec's vocabulary (see module doc); with ``path`` it is
    also written there in ``format`` (``turtle``, ``nt``, ``json-ld``, ``xml``...).

    ``interactions=False`` leaves the interactions out (a knowledge-only export). rdflib holds
    everything in memory: about 7 triples per interaction, so export samples of big graphs."""
    g = rdflib.Graph()
    g.bind("kgrec", KGREC)
    for kind in ("user", "item", "entity", "relation"):
        g.bind(kind, Namespace(f"{RDF_DATA_NAMESPACE}{kind}/"))
    add = g.add
    for typ, table, key in (("user", kg.users, "user_id"), ("item", kg.items, "item_id"),
                            ("entity", kg.entities, "entity_id")):
        cols = ["name", "text"] + (["kind"] if typ == "entity" else [])
        values = {c: table[c].tolist() for c in cols}
        for n, node_id in enumerate(table[key].tolist()):
            u = _uri(typ, node_id)
            add((u, RDF.type, NODE_CLASS[typ]))
            add((u, KGREC.id, RdfLiteral(str(node_id))))
            for c in cols:
                v = values[c][n]
                if v is not None and v is not pd.NA and not (isinstance(v, float) and math.isnan(v)):
                    add((u, KGREC[c], RdfLiteral(str(v))))
    rel_uri: dict[str, URIRef] = {}
    for rel in pd.unique(kg.triples["relation"]).tolist():
        p = _uri("relation", rel)
        rel_uri[rel] = p
        add((p, RDF.type, RDF.Property))
        add((p, RDFS.subPropertyOf, KGREC.RELATED))
        add((p, KGREC.relation, RdfLiteral(rel)))
    for ht, h, rel, tt, t in kg.triples.itertuples(index=False, name=None):
        add((_uri(ht, h), rel_uri[rel], _uri(tt, t)))
    if interactions:
        inter = kg.interactions
        cols = {"rating": XSD.double, "weight": XSD.double, "timestamp": XSD.long}
        vals = {c: inter[c].to_numpy(dtype=float, na_value=np.nan) for c in cols}
        for n, (uid, iid) in enumerate(zip(inter["user_id"].tolist(), inter["item_id"].tolist())):
            u, i = _uri("user", uid), _uri("item", iid)
            add((u, KGREC.INTERACTED, i))
            props = [(c, vals[c][n]) for c in cols if not math.isnan(vals[c][n])]
            if props:
                st = BNode()
                add((st, RDF.type, RDF.Statement))
                add((st, RDF.subject, u))
                add((st, RDF.predicate, KGREC.INTERACTED))
                add((st, RDF.object, i))
                for c, v in props:
                    lit = RdfLiteral(int(v), datatype=XSD.long) if c == "timestamp" else RdfLiteral(float(v),
                                                                                                  datatype=XSD.double)
                    add((st, KGREC[c], lit))
    if path is not None:
        g.serialize(destination=str(path), format=format, encoding="utf-8")
    return g


def read_rdf(source: RdfSource, format: str | None = None, *, name: str | None = None) -> KnowledgeGraph:
    """A KnowledgeGraph from RDF in kgrec's vocabulary (what :func:`to_rdf` writes).

    Row order is not part of RDF: the tables come back sorted by id (interactions by user,
    item; triples by head, relation, tail)."""
    g = parse_rdf(source, format)
    src = str(source) if not isinstance(source, rdflib.Graph) else "<rdflib.Graph>"
    nodes: dict[rdflib.term.Node, tuple[str, str]] = {}
    tables: dict[str, list[dict]] = {"user": [], "item": [], "entity": []}
    for typ, cls in NODE_CLASS.items():
        for s in g.subjects(RDF.type, cls):
            node_id = g.value(s, KGREC.id)
            if node_id is None:
                raise DataError(src, None, f"{typ} {s} has no kgrec:id", "give every kgrec node a kgrec:id literal")
            nodes[s] = (typ, str(node_id))
            row = {f"{typ}_id": str(node_id)}
            for c in ["name", "text"] + (["kind"] if typ == "entity" else []):
                v = g.value(s, KGREC[c])
                row[c] = str(v) if v is not None else None
            tables[typ].append(row)
    if not nodes:
        raise DataError(src, None, "no kgrec:User / kgrec:Item / kgrec:Entity nodes found",
                        "read_rdf reads files written by kgrec's to_rdf; for other RDF use from_rdf(kg, ...)")

    def ref(term: rdflib.term.Node, what: str) -> tuple[str, str]:
        if term not in nodes:
            raise DataError(src, None, f"{what} {term} is not a kgrec node", "declare it with rdf:type and kgrec:id")
        return nodes[term]

    trip = []
    for p in set(g.subjects(RDFS.subPropertyOf, KGREC.RELATED)):
        rel = str(g.value(p, KGREC.relation) or _local(p))
        for s, o in g.subject_objects(p):
            (ht, h), (tt, t) = ref(s, "head"), ref(o, "tail")
            trip.append((ht, h, rel, tt, t))
    props: dict[tuple[str, str], dict[str, float]] = {}
    for st in g.subjects(RDF.predicate, KGREC.INTERACTED):
        u, i = ref(g.value(st, RDF.subject), "user")[1], ref(g.value(st, RDF.object), "item")[1]
        props[(u, i)] = {c: g.value(st, KGREC[c]).toPython() for c in ("rating", "weight", "timestamp")
                         if g.value(st, KGREC[c]) is not None}
    inter = []
    for s, o in g.subject_objects(KGREC.INTERACTED):
        u, i = ref(s, "user")[1], ref(o, "item")[1]
        p = props.get((u, i), {})
        inter.append((u, i, p.get("rating", np.nan), p.get("weight", np.nan), p.get("timestamp", pd.NA)))
    inter_df = pd.DataFrame(inter, columns=["user_id", "item_id", "rating", "weight", "timestamp"])
    inter_df = inter_df.sort_values(["user_id", "item_id"], kind="stable")
    trip_df = pd.DataFrame(sorted(trip), columns=["head_type", "head", "relation", "tail_type", "tail"])
    frames = {t: pd.DataFrame(rows).sort_values(f"{t}_id") if rows else None for t, rows in tables.items()}
    ents = frames["entity"]
    if ents is not None:
        ents = ents.reindex(columns=list(ENTITY_COLUMNS))
    return KnowledgeGraph.build(interactions=inter_df, users=frames["user"], items=frames["item"],
                                entities=ents, triples=trip_df, name=name or Path(src).stem,
                                sources={"interactions": src, "triples": src})

