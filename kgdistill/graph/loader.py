"""One entry point, ``load_graph``, that turns any supported graph file into a KnowledgeGraph.

Format modules (``obo``, ``rdf``, ``tabular``) register their readers in
``GRAPH_LOADERS``; this module only picks one and enforces the shared input rules
(file exists, not empty, valid UTF-8) so that every reader fails the same way.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, GraphFormatError
from ..registry import Registry
from .kg import KnowledgeGraph

GraphReader = Callable[..., KnowledgeGraph]
GRAPH_LOADERS: Registry[GraphReader] = Registry("graph format")

EXTENSIONS: dict[str, str] = {
    ".obo": "obo",
    ".ttl": "turtle",
    ".rdf": "rdfxml",
    ".owl": "owl",
    ".xml": "rdfxml",
    ".nt": "ntriples",
    ".graphml": "graphml",
    ".csv": "csv",
    ".json": "obographs",
}
DANGLING_MODES = ("add", "drop", "error")


def detect_format(path: Path) -> str:
    """Format name for a path, from its extension or (for a folder) its nodes.csv + edges.csv."""
    if path.is_dir():
        if (path / "nodes.csv").is_file() and (path / "edges.csv").is_file():
            return "csv"
        raise GraphFormatError("a graph folder must contain nodes.csv and edges.csv", source=str(path))
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        accepted = ", ".join(EXTENSIONS)
        raise GraphFormatError(f"unknown graph file extension {path.suffix or '(none)'!r}; accepted: "
                               f"{accepted}, or a folder with nodes.csv and edges.csv", source=str(path))
    return fmt


def load_graph(path: str | Path, format: str = "auto", **options: Any) -> KnowledgeGraph:
    """Read a graph file (or CSV folder); ``options`` go to the format's reader (e.g. ``dangling``)."""
    path = Path(path)
    if not path.exists():
        raise GraphFormatError("file not found", source=str(path))
    reader = GRAPH_LOADERS.get(detect_format(path) if format == "auto" else format)
    try:
        inspect.signature(reader).bind(path, **options)
    except TypeError as exc:
        name = getattr(reader, 'registry_name', format)
        if "extra_relations" in options and "extra_relations" not in inspect.signature(reader).parameters:
            raise ConfigError(f"graph format {name!r}: extra relations (--relation, graph.extra_relations) apply to "
                              "RDF / OWL files only; this format reads every edge it has") from None
        raise ConfigError(f"graph format {name!r}: {exc}") from None
    return reader(path, **options)


def read_text(path: Path) -> str:
    """File contents as text; empty files and non-UTF-8 bytes become line-numbered GraphFormatErrors."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GraphFormatError(f"cannot read file: {exc.strerror or exc}", source=str(path)) from None
    if not data.strip():
        raise GraphFormatError("file is empty", source=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise GraphFormatError(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at column {column}",
                               source=str(path), line=line) from None
    if not text.strip():  # nothing but a byte-order mark
        raise GraphFormatError("file is empty", source=str(path))
    return text


def check_dangling(mode: str) -> str:
    """Validate a reader's ``dangling`` option early, before any parsing work."""
    if mode not in DANGLING_MODES:
        raise ConfigError(f"dangling must be one of {', '.join(DANGLING_MODES)}; got {mode!r}")
    return mode
