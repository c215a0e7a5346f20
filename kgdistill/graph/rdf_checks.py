"""What rdflib lets through: a strict grammar check for Turtle and N-Triples, and its logging kept to one line.

rdflib's Turtle reader is lenient: it accepts IRIs with spaces, a literal as a predicate, Notation3 syntax
(``{ } =>``, ``@forAll``, ``is ... of``), unknown ``@`` keywords and local names starting with ``-``, so a typo
becomes a silently wrong graph.  Oxigraph's parser (pyoxigraph, a conformant implementation that passes the W3C
test suites) checks each file against the grammar first, with the line and column.  rdflib also logs a full
traceback for each literal whose text does not fit its datatype (``"abc"^^xsd:integer``); those records are
caught and summed up in one warning line naming the file.
"""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from typing import Iterator

import pyoxigraph
from rdflib import Graph, Literal

from ..errors import GraphFormatError

log = logging.getLogger("kgdistill.graph")

STRICT_FORMATS = {"turtle": (pyoxigraph.RdfFormat.TURTLE, "Turtle"), "nt": (pyoxigraph.RdfFormat.N_TRIPLES, "N-Triples")}
_OXI_PREFIX = re.compile(r"^Parser error (?:at line \d+ (?:column \d+|between columns \d+ and \d+)|between line \d+ "
                         r"column \d+ and line \d+ column \d+): ")


def check_grammar(text: str, rdf_format: str, source: str, base_iri: str) -> None:
    """Raise a GraphFormatError, with the line, for anything the format's W3C grammar forbids."""
    if rdf_format not in STRICT_FORMATS:
        return
    fmt, name = STRICT_FORMATS[rdf_format]
    try:
        for _ in pyoxigraph.parse(text.encode("utf-8"), format=fmt, base_iri=base_iri):
            pass
    except SyntaxError as exc:
        line, col = exc.lineno, exc.offset
        why = _OXI_PREFIX.sub("", str(exc)).removesuffix(f" (line {line})").strip()
        if why.startswith("Unexpected end"):
            why = (f"unexpected end of file: the statement, string or IRI that starts at column {col} is not closed "
                   "(truncated?)")
        else:
            lines = text.split("\n")
            near = lines[line - 1][col - 1:col + 19].strip() if line and col and line <= len(lines) else ""
            why += f" (column {col}" + (f", near {near!r})" if near else ")")
        raise GraphFormatError(f"{name} syntax error: {why}", source=source, line=line) from None
    except (ValueError, OSError) as exc:
        raise GraphFormatError(f"{name} syntax error: {' '.join(str(exc).split())[:300]}", source=source) from None


@contextlib.contextmanager
def library_messages(source: str, text: str, graph: Graph) -> Iterator[None]:
    """Run an rdflib parse with its log records and Python warnings held back, then say each kind in one line."""
    records: list[logging.LogRecord] = []

    class _Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    lib = logging.getLogger("rdflib")
    hold, propagate = _Hold(logging.WARNING), lib.propagate
    lib.addHandler(hold)
    lib.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        lib.removeHandler(hold)
        lib.propagate = propagate
    _report_ill_typed(source, text, graph)
    other: dict[str, int] = {}
    for msg in [r.getMessage() for r in records if "lexical form" not in r.getMessage()] + \
               [str(w.message) for w in caught]:
        first = " ".join(msg.split("\n", 1)[0].split())[:200]
        other[first] = other.get(first, 0) + 1
    for msg, n in other.items():
        log.warning("%s: warning from rdflib: %s%s", source, msg, f" ({n} times)" if n > 1 else "")


def _report_ill_typed(source: str, text: str, graph: Graph) -> None:
    bad = [o for o in graph.objects() if isinstance(o, Literal) and o.datatype is not None and o.ill_typed]
    if not bad:
        return
    first = min(bad, key=lambda lit: _find(text, str(lit)))
    pos = _find(text, str(first))
    line = f":{text.count(chr(10), 0, pos) + 1}" if pos < len(text) else ""
    dtype = graph.namespace_manager.normalizeUri(first.datatype)
    log.warning('%s%s: warning: %d literal%s whose text does not fit the datatype, kept as text (first: "%s"^^%s)',
                source, line, len(bad), "" if len(bad) == 1 else "s", first, dtype)


def _find(text: str, lexical: str) -> int:
    """Where a literal's text first appears quoted in the file (len(text) when it cannot be found)."""
    hits = [i for q in ('"', "'") if (i := text.find(f"{q}{lexical}{q}")) >= 0]
    return min(hits) if hits else len(text)
