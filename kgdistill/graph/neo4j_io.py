"""Read a domain graph that lives in Neo4j into the project's typed :class:`KnowledgeGraph`.

::

    kg = load_neo4j("bolt://127.0.0.1:7687", node_label="Phenotype", rel_types=["IS_A"])

Nodes carrying any of the given labels become concepts (id, name, text, type, synonyms from the
properties you name); relationships of the given types between such nodes become typed edges,
``(a)-[:T]->(b)`` read as ``a -> b`` (the project's *specific -> general* convention: a Neo4j
``(child)-[:IS_A]->(parent)`` fits as is; list types that point the other way in ``reverse_types``).
Relation names are the relationship types, lower-cased by default (``IS_A`` -> ``is_a``, as in OBO).

Credentials come from NEO4J_USER / NEO4J_PASSWORD (or ``auth=`` from Python).  Labels and types are
checked against a strict name pattern and against what the database holds; every value (property
names included) is a query parameter.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from ..errors import GraphFormatError
from ..neo4j_client import connect, explain, neo4j_auth, redact_uri
from .kg import GraphBuilder, KnowledgeGraph

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Q_NODES = """
MATCH (n) WHERE any(l IN labels(n) WHERE l IN $labels)
RETURN n[$id_p] AS id,
       CASE WHEN $name_p IS NULL THEN null ELSE n[$name_p] END AS name,
       CASE WHEN $text_p IS NULL THEN null ELSE n[$text_p] END AS text,
       CASE WHEN $type_p IS NULL THEN null ELSE n[$type_p] END AS type,
       CASE WHEN $syn_p IS NULL THEN null ELSE n[$syn_p] END AS synonyms,
       [l IN labels(n) WHERE l IN $labels][0] AS label,
       elementId(n) AS eid
"""
Q_EDGES = """
MATCH (a)-[r]->(b)
WHERE any(l IN labels(a) WHERE l IN $labels) AND any(l IN labels(b) WHERE l IN $labels)
  AND ($types IS NULL OR type(r) IN $types)
RETURN a[$id_p] AS src, b[$id_p] AS dst, type(r) AS rel,
       CASE WHEN $weight_p IS NULL THEN null ELSE r[$weight_p] END AS weight
"""


def check_name(kind: str, name: str) -> str:
    """A label or relationship type: letters, digits and underscores only (never spliced from user text)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise GraphFormatError(f"invalid {kind} {name!r}: use letters, digits and underscores only")
    return name


def load_neo4j(uri: str, node_label: str | Sequence[str], rel_types: Sequence[str] | None = None, *,
               id_property: str = "id", name_property: str | None = "name", text_property: str | None = None,
               type_property: str | None = None, synonyms_property: str | None = None,
               weight_property: str | None = None, reverse_types: Iterable[str] = (),
               lowercase_relations: bool = True, database: str | None = None, auth: Any = None) -> KnowledgeGraph:
    """Read nodes with ``node_label`` (one or several) and ``rel_types`` edges (default: all types) from Neo4j.

    A node's type is its ``type_property`` value if given and set, else the label it was read by.
    """
    auth = neo4j_auth(auth)
    uri_given, uri = uri, redact_uri(uri)  # messages and the graph's source never repeat a password
    labels = [node_label] if isinstance(node_label, str) else list(node_label)
    if not labels:
        raise GraphFormatError("name at least one node label", source=uri)
    labels = [check_name("node label", x) for x in labels]
    types = None if not rel_types else [check_name("relationship type", t) for t in rel_types]
    reverse = {check_name("relationship type", t) for t in reverse_types}
    for p in (id_property, name_property, text_property, type_property, synonyms_property, weight_property):
        if p is not None and (not isinstance(p, str) or not p):
            raise GraphFormatError(f"invalid property name {p!r}", source=uri)

    source = f"{uri} ({'|'.join(labels)})"
    driver = connect(uri_given, auth)
    try:
        with driver.session(database=database, default_access_mode="READ") as session:
            present_labels = {r["label"] for r in session.run("CALL db.labels() YIELD label RETURN label")}
            missing = [x for x in labels if x not in present_labels]
            if missing:
                known = ", ".join(sorted(present_labels)[:20]) or "none"
                raise GraphFormatError(f"no nodes with label {missing[0]!r} (labels present: {known})", source=source)
            if types is not None:
                present_types = {r["relationshipType"] for r in
                                 session.run("CALL db.relationshipTypes() YIELD relationshipType "
                                             "RETURN relationshipType")}
                absent = [t for t in types if t not in present_types]
                if absent:
                    known = ", ".join(sorted(present_types)[:20]) or "none"
                    raise GraphFormatError(f"no relationships of type {absent[0]!r} (types present: {known})",
                                           source=source)
            params = {"labels": labels, "id_p": id_property, "name_p": name_property, "text_p": text_property,
                      "type_p": type_property, "syn_p": synonyms_property, "weight_p": weight_property,
                      "types": types}
            builder = GraphBuilder(source)
            no_id = 0
            example = None
            for rec in session.run(Q_NODES, params):
                nid = rec["id"]
                if nid is None or (isinstance(nid, str) and not nid.strip()):
                    no_id += 1
                    example = example or rec["eid"]
                    continue
                builder.add_node(str(nid), _text(rec["name"]), _text(rec["text"]),
                                 type=_text(rec["type"]) or rec["label"], synonyms=_synonyms(rec["synonyms"]))
            if no_id:
                raise GraphFormatError(f"{no_id} node(s) have no {id_property!r} property (e.g. element {example}); "
                                       f"pick the id property with id_property / --id-property", source=source)
            for rec in session.run(Q_EDGES, params):
                rel = rec["rel"]
                src, dst = str(rec["src"]), str(rec["dst"])
                if rel in reverse:
                    src, dst = dst, src
                weight = rec["weight"]
                if weight is None:
                    weight = 1.0
                elif isinstance(weight, bool) or not isinstance(weight, (int, float)):
                    raise GraphFormatError(f"edge {src} -[{rel}]-> {dst}: weight must be a number, got {weight!r}",
                                           source=source)
                builder.add_edge(src, dst, rel.lower() if lowercase_relations else rel, weight)
    except GraphFormatError:
        raise
    except Exception as exc:  # driver errors: one clear line
        from neo4j.exceptions import DriverError, Neo4jError

        if isinstance(exc, (DriverError, Neo4jError, OSError)):
            raise explain(exc, uri, auth, "reading the graph") from None
        raise
    finally:
        driver.close()
    return builder.build(dangling="error")


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return str(v)


def _synonyms(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None and str(x)]
    return [s for s in str(v).split("|") if s]
