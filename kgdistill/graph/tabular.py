"""Plain-table graph formats: GraphML (via networkx) and CSV edge lists.

The CSV layout is exactly what ``KnowledgeGraph.save_csv`` writes (``nodes.csv`` +
``edges.csv``), so a saved graph loads back unchanged; a lone edge list also works.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterator
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

import networkx as nx

from ..errors import GraphFormatError
from .kg import GraphBuilder, KnowledgeGraph
from .loader import GRAPH_LOADERS, check_dangling, read_text

DEFAULT_RELATION = "related_to"
SYNONYM_SEPARATOR = "|"


@GRAPH_LOADERS.register("graphml")
def read_graphml(path: Path, *, dangling: str = "add") -> KnowledgeGraph:
    """Node attributes name/label, text/description, type, synonyms; edge relation/label/type, weight.

    Node ids must be unique (as GraphML requires); edge endpoints never declared as ``<node>`` are
    ``dangling`` (added as bare nodes by default, and listed), as for CSV.
    """
    check_dangling(dangling)
    source = str(path)
    text = read_text(path)
    try:
        g = nx.parse_graphml(text)
    except ParseError as exc:
        raise GraphFormatError(f"invalid GraphML XML: {exc}", source=source, line=exc.position[0]) from None
    except Exception as exc:  # networkx raises assorted types for well-formed XML that is not GraphML
        raise GraphFormatError(f"invalid GraphML: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                               source=source) from exc
    declared = _graphml_node_lines(text)
    for node_id, lines in declared.items():
        if len(lines) > 1:
            raise GraphFormatError(f"duplicate node id {node_id!r} (first declared on line {lines[0]})",
                                   source=source, line=lines[1])
    builder = GraphBuilder(source)
    for node, attrs in g.nodes(data=True):
        if str(node) not in declared:
            continue  # created by networkx for an edge endpoint: resolved as dangling by build()
        builder.add_node(str(node), _attr(attrs, "name", "label"), _attr(attrs, "text", "description"),
                         type=_attr(attrs, "type") or "concept", synonyms=_split(_attr(attrs, "synonyms")))
    for src, dst, attrs in g.edges(data=True):
        builder.add_edge(str(src), str(dst), _attr(attrs, "relation", "label", "type") or DEFAULT_RELATION,
                         _weight(attrs.get("weight"), source, None, where=f"edge {src} -> {dst}: "))
    return builder.build(dangling=dangling)


def _graphml_node_lines(text: str) -> dict[str, list[int]]:
    """Lines where each top-level ``<node id=...>`` is declared (networkx merges duplicates silently)."""
    parser = expat.ParserCreate(namespace_separator=" ")
    stack: list[str] = []
    found: dict[str, list[int]] = {}

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rsplit(" ", 1)[-1]
        if local == "node" and stack == ["graphml", "graph"] and "id" in attrs:
            found.setdefault(attrs["id"], []).append(parser.CurrentLineNumber)
        stack.append(local)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: stack.pop()
    parser.Parse(text, True)
    return found


@GRAPH_LOADERS.register("csv")
def read_csv_graph(path: Path, *, dangling: str = "add") -> KnowledgeGraph:
    """``source,target[,relation,weight]`` rows, plus node details from a sibling nodes file if present.

    Without a nodes file every endpoint is a node; with one, endpoints it does not
    declare are ``dangling`` (added as bare nodes by default, and listed).
    """
    check_dangling(dangling)
    edges_path, nodes_path = _csv_paths(path)
    builder = GraphBuilder()
    if nodes_path is not None:
        builder.source = str(nodes_path)
        for line, row in _rows(nodes_path, ("id",)):
            builder.add_node(row["id"], row.get("name"), row.get("text"), type=row.get("type") or "concept",
                             synonyms=_split(row.get("synonyms")), line=line)
    builder.source = str(edges_path)
    for line, row in _rows(edges_path, ("source", "target")):
        if nodes_path is None:
            builder.add_node(row["source"], line=line)
            builder.add_node(row["target"], line=line)
        builder.add_edge(row["source"], row["target"], row.get("relation") or DEFAULT_RELATION,
                         _weight(row.get("weight"), str(edges_path), line), line=line)
    graph = builder.build(dangling=dangling)
    graph.source = str(path)
    return graph


def _csv_paths(path: Path) -> tuple[Path, Path | None]:
    """(edges file, nodes file or None): a folder's pair, or ``[x_]edges.csv`` and its ``[x_]nodes.csv``."""
    if path.is_dir():
        return path / "edges.csv", path / "nodes.csv"
    if path.name.lower().endswith("edges.csv"):
        nodes = path.with_name(path.name[: -len("edges.csv")] + "nodes.csv")
        if nodes.is_file():
            return path, nodes
    return path, None


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-case column) for each non-blank row, checking the header and widths."""
    source = str(path)
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    try:
        columns = [c.strip().lower() for c in next(reader)]
        missing = [c for c in required if c not in columns]
        if missing:
            raise GraphFormatError(f"header must name the columns {', '.join(required)}; missing "
                                   f"{', '.join(missing)} (header: {','.join(columns)})", source=source, line=1)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                detail = f"missing column {columns[len(row)]!r}" if len(row) < len(columns) else "too many fields"
                raise GraphFormatError(f"{detail}: row has {len(row)} fields, header has {len(columns)}",
                                       source=source, line=reader.line_num)
            values = dict(zip(columns, (cell.strip() for cell in row)))
            for column in required:
                if not values[column]:
                    raise GraphFormatError(f"empty {column!r}", source=source, line=reader.line_num)
            yield reader.line_num, values
    except csv.Error as exc:
        raise GraphFormatError(f"bad CSV: {exc}", source=source, line=reader.line_num) from None


def _weight(value: Any, source: str, line: int | None, where: str = "") -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1.0
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise GraphFormatError(f"{where}weight {value!r} is not a number", source=source, line=line) from None
    if not math.isfinite(weight):
        raise GraphFormatError(f"{where}weight must be a finite number, got {value!r}", source=source, line=line)
    return weight


def _attr(attrs: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _split(value: str | None) -> list[str]:
    return [s.strip() for s in (value or "").split(SYNONYM_SEPARATOR) if s.strip()]
