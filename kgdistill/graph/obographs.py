"""OBO Graphs JSON (``.json``), the OBO Foundry's JSON release format, into the same typed graph as the ``.obo``.

An ontology release ships ``x.obo``, ``x.owl`` and ``x.json``; the JSON (https://github.com/geneontology/obographs)
holds ``graphs[*].nodes`` (``id``, ``lbl``, ``type``, ``meta.definition.val``, ``meta.synonyms[*].val``,
``meta.deprecated``) and ``graphs[*].edges`` (``sub``, ``pred``, ``obj``; ``pred`` is ``is_a`` or a property IRI).
It is read to exactly what :func:`kgdistill.graph.obo.read_obo` makes of the OBO file of the same release: ``CLASS``
nodes become ``term`` nodes with CURIE ids (``HP:0000118``), deprecated ones are skipped, and a property edge is
named as the OBO file names it (the property's ``oboInOwl:shorthand``, e.g. ``part_of``, else its CURIE).
Problems name the file and the JSON path (``graphs[0].nodes[3]``), or the line for JSON syntax.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from ..errors import GraphFormatError
from .kg import GraphBuilder, KnowledgeGraph
from .loader import GRAPH_LOADERS, check_dangling, read_text

log = logging.getLogger(__name__)
_OBO_PURL = re.compile(r"^http://purl\.obolibrary\.org/obo/([A-Za-z][A-Za-z0-9]*)_([A-Za-z0-9_]+)$")
SHORTHAND = "http://www.geneontology.org/formats/oboInOwl#shorthand"


def curie(value: str) -> str:
    """``http://purl.obolibrary.org/obo/HP_0000118`` -> ``HP:0000118``; anything else as given."""
    m = _OBO_PURL.match(value)
    return f"{m.group(1)}:{m.group(2)}" if m else value


@GRAPH_LOADERS.register("obographs")
def read_obographs(path: Path, *, dangling: str = "drop") -> KnowledgeGraph:
    """Classes become ``term`` nodes and edges child -> parent, as for the OBO file of the same release."""
    check_dangling(dangling)
    source = str(path)
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFormatError(f"not valid JSON: {exc.msg} (column {exc.colno})", source=source,
                               line=exc.lineno) from None
    except RecursionError:
        raise GraphFormatError("not valid JSON: nested too deeply", source=source) from None
    graphs = doc.get("graphs") if isinstance(doc, dict) else None
    if not isinstance(graphs, list) or not graphs:
        raise GraphFormatError("expected an OBO Graphs document: an object with a non-empty 'graphs' list",
                               source=source)
    builder = GraphBuilder(source)
    obsolete: set[str] = set()
    relation_names: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for gi, graph in enumerate(graphs):
        where = f"graphs[{gi}]"
        if not isinstance(graph, dict):
            raise GraphFormatError(f"{where}: expected an object with 'nodes' and 'edges'", source=source)
        _read_nodes(builder, _list(graph, "nodes", where, source), where, source, obsolete, relation_names)
        edges += _read_edges(_list(graph, "edges", where, source), where, source)
    for sub, pred, obj in edges:
        if sub not in obsolete and obj not in obsolete:
            builder.add_edge(sub, obj, "is_a" if pred == "is_a" else relation_names.get(pred, curie(pred)))
    if obsolete:
        log.warning("%s: skipped %d obsolete terms", source, len(obsolete))
    return builder.build(dangling=dangling)


def _list(obj: dict, key: str, where: str, source: str) -> list:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise GraphFormatError(f"{where}.{key}: expected a list, got {type(value).__name__}", source=source)
    return value


def _read_nodes(builder: GraphBuilder, nodes: list, where: str, source: str, obsolete: set[str],
                relation_names: dict[str, str]) -> None:
    """Adds the classes; notes each property's relation name (its shorthand, else its CURIE)."""
    for ni, node in enumerate(nodes):
        at = f"{where}.nodes[{ni}]"
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not node["id"].strip():
            raise GraphFormatError(f"{at}: a node needs a non-empty string 'id'", source=source)
        meta = node.get("meta") or {}
        if not isinstance(meta, dict):
            raise GraphFormatError(f"{at}.meta: expected an object", source=source)
        nid = curie(node["id"].strip())
        if node.get("type") == "PROPERTY":
            short = [v.get("val") for v in _list(meta, "basicPropertyValues", f"{at}.meta", source)
                     if isinstance(v, dict) and v.get("pred") == SHORTHAND and isinstance(v.get("val"), str)]
            relation_names[node["id"]] = short[0] if short else nid
            continue
        if node.get("type") != "CLASS":
            continue  # individuals and untyped references: the OBO reader reads [Term] stanzas only
        if meta.get("deprecated") is True:
            obsolete.add(nid)
            continue
        definition = meta.get("definition") or {}
        text = definition.get("val") if isinstance(definition, dict) else None
        synonyms = [s.get("val") for s in _list(meta, "synonyms", f"{at}.meta", source) if isinstance(s, dict)]
        for value, key in ((node.get("lbl"), "lbl"), (text, "meta.definition.val")):
            if value is not None and not isinstance(value, str):
                raise GraphFormatError(f"{at}.{key}: expected a string, got {type(value).__name__}", source=source)
        if not all(isinstance(s, str) for s in synonyms):
            raise GraphFormatError(f"{at}.meta.synonyms: every synonym needs a string 'val'", source=source)
        builder.add_node(nid, _clean(node.get("lbl")), _clean(text), type="term",
                         synonyms=[_clean(s) for s in synonyms])


def _read_edges(edges: list, where: str, source: str) -> list[tuple[str, str, str]]:
    """(sub, pred, obj) with OBO PURLs as CURIEs; ``pred`` stays as written until every property is known."""
    out = []
    for ei, edge in enumerate(edges):
        if not isinstance(edge, dict) or not all(isinstance(edge.get(k), str) and edge[k].strip()
                                                 for k in ("sub", "pred", "obj")):
            raise GraphFormatError(f"{where}.edges[{ei}]: an edge needs string 'sub', 'pred' and 'obj'", source=source)
        out.append((curie(edge["sub"].strip()), edge["pred"].strip(), curie(edge["obj"].strip())))
    return out


def _clean(text: Any) -> str:
    return str(text).strip() if text else ""
