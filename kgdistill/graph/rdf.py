"""RDF (Turtle, RDF/XML, N-Triples) into the typed graph, via rdflib.

RDF mixes the concept graph with schema bookkeeping and annotations; this module keeps
as relations only concept-to-concept links (subClassOf, existential OWL restrictions,
SKOS hierarchy and mapping links, declared or known object properties; see
``link_rule``), keeps other IRI-valued properties (annotation properties such as
oboInOwl:inSubset) as node attributes, and reads labels, definitions and synonyms
from the usual SKOS / RDFS / OBO annotation properties.
"""
from __future__ import annotations

import bisect
import io
import logging
import re
from functools import partial
from pathlib import Path
from typing import Callable, Sequence
from xml.sax import SAXParseException

from rdflib import OWL, RDF, RDFS, SKOS, BNode, Graph, Literal, URIRef
from rdflib.exceptions import ParserError
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.plugins.parsers.ntriples import NTGraphSink, W3CNTriplesParser

from ..errors import ConfigError, GraphFormatError
from .kg import GraphBuilder, KnowledgeGraph
from .loader import GRAPH_LOADERS, read_text
from .rdf_checks import check_grammar, library_messages

IAO_DEFINITION = URIRef("http://purl.obolibrary.org/obo/IAO_0000115")
_OBO_PURL = re.compile(r"^http://purl\.obolibrary\.org/obo/([A-Za-z][A-Za-z0-9]*)_([A-Za-z0-9_]+)$")

log = logging.getLogger(__name__)
OBO_IN_OWL = "http://www.geneontology.org/formats/oboInOwl#"
LABELS = (SKOS.prefLabel, RDFS.label)
SYNONYMS = (SKOS.altLabel, *(URIRef(OBO_IN_OWL + f"has{k}Synonym") for k in ("Exact", "Related", "Broad", "Narrow")))
SKOS_LINKS = {SKOS.related, SKOS.broaderTransitive, SKOS.narrowerTransitive, SKOS.exactMatch, SKOS.closeMatch,
              SKOS.broadMatch, SKOS.narrowMatch, SKOS.relatedMatch, SKOS.mappingRelation, SKOS.semanticRelation}
OBJECT_PROPERTY_TYPES = (OWL.ObjectProperty, OWL.TransitiveProperty, OWL.SymmetricProperty, OWL.AsymmetricProperty,
                         OWL.ReflexiveProperty, OWL.IrreflexiveProperty, OWL.InverseFunctionalProperty)
# the OBO Relation Ontology and BFO relations (part_of = BFO_0000050, ...): object properties by construction
_KNOWN_OBJECT_PROPERTY = re.compile(r"^http://purl\.obolibrary\.org/obo/(RO|BFO)_\d+$")
DEFINITIONS = (SKOS.definition, IAO_DEFINITION, RDFS.comment)
# Types of schema resources (ontology headers, schemes, properties) that are never concepts.
SCHEMA_TYPES = {
    OWL.Ontology, SKOS.ConceptScheme, RDF.Property, OWL.ObjectProperty, OWL.DatatypeProperty,
    OWL.AnnotationProperty, OWL.TransitiveProperty, OWL.SymmetricProperty, OWL.FunctionalProperty,
    OWL.InverseFunctionalProperty,
}
GENERIC_TYPES = {OWL.Class, RDFS.Class, SKOS.Concept, OWL.NamedIndividual, OWL.Thing}
RDF_FORMATS = {"turtle": "turtle", "rdfxml": "xml", "owl": "xml", "ntriples": "nt"}


def read_rdf(path: Path, *, rdf_format: str = "turtle", extra_relations: Sequence[str] = ()) -> KnowledgeGraph:
    """Parse with rdflib, then map concepts to nodes and concept links to typed edges; ``extra_relations``:
    properties read as relations although the file does not declare them as object properties."""
    if isinstance(extra_relations, str):
        raise ConfigError(f"extra_relations: expected a list of property IRIs or CURIEs, got {extra_relations!r}")
    return rdf_to_graph(_parse(path, rdf_format), source=str(path), extra_relations=extra_relations)


for _name, _fmt in RDF_FORMATS.items():
    GRAPH_LOADERS.register(_name)(partial(read_rdf, rdf_format=_fmt))


def _parse(path: Path, rdf_format: str) -> Graph:
    text = read_text(path)
    g = Graph(bind_namespaces="core")
    source = str(path)
    if rdf_format == "xml":
        _check_entity_expansion(text, source)
    check_grammar(text, rdf_format, source, base_iri=path.resolve().as_uri())
    try:
        with library_messages(source, text, g):
            if rdf_format == "nt":
                _parse_ntriples(g, text, source)
            else:
                g.parse(data=text, format=rdf_format, publicID=path.resolve().as_uri())
    except GraphFormatError:
        raise
    except BadSyntax as exc:
        why = re.search(r"Bad syntax \((.*)\) at \^", str(exc))
        raise GraphFormatError(f"Turtle syntax error: {why.group(1) if why else exc}",
                               source=source, line=_bad_syntax_line(exc, text)) from None
    except SAXParseException as exc:
        raise GraphFormatError(f"XML syntax error: {exc.getMessage()}", source=source,
                               line=exc.getLineNumber()) from None
    except Exception as exc:  # rdflib raises many types on bad input; all mean "not this format"
        if rdf_format == "turtle" and (isinstance(exc, IndexError) or "Quote expected in string" in str(exc)):
            # rdflib's Turtle parser ran past the end of an unfinished statement or string
            raise GraphFormatError("Turtle syntax error: unexpected end of file in an unfinished statement or string "
                                   "(truncated?)", source=source, line=len(text.rstrip().split("\n"))) from None
        why = " ".join(str(exc).split())[:300]
        raise GraphFormatError(f"cannot parse as {rdf_format}: {type(exc).__name__}: {why}",
                               source=source) from exc
    return g


_ENTITY_DECL = re.compile(r"""<!ENTITY\s+(%\s+)?([^\s"'>%]+)\s+(?:"([^"]*)"|'([^']*)')""")
_ENTITY_REF = re.compile(r"&([A-Za-z_:][\w.:-]*);")
MAX_ENTITY_CHARS = 1 << 20


def _check_entity_expansion(text: str, source: str) -> None:
    """Refuse XML whose internal DTD entities expand to far more text than the file holds (billion laughs).

    OWL files declare short entities for namespaces (``&owl;``), which pass; nested entities that multiply
    would make the XML parser build gigabytes of text, which rdflib then handles very slowly.
    """
    if "<!ENTITY" not in text:
        return
    decls: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    for m in _ENTITY_DECL.finditer(text):
        spans.append(m.span())
        if not m.group(1):
            decls.setdefault(m.group(2), m.group(3) if m.group(3) is not None else m.group(4))
    sizes: dict[str, int] = {}

    def size(name: str, depth: int = 0) -> int:
        """Characters the entity expands to (capped), counting nested references once per use."""
        if name not in sizes:
            sizes[name] = 0  # a self-reference is an XML error the parser reports itself
            total = len(decls[name])
            for ref in _ENTITY_REF.finditer(decls[name]):
                if ref.group(1) in decls and depth < 64:
                    total += size(ref.group(1), depth + 1) - len(ref.group(0))
            sizes[name] = min(total, 1 << 62)
        return sizes[name]

    starts = [a for a, _ in spans]
    limit = MAX_ENTITY_CHARS + 10 * len(text)
    total = 0
    for ref in _ENTITY_REF.finditer(text):
        k = bisect.bisect_right(starts, ref.start()) - 1
        if k >= 0 and ref.start() < spans[k][1]:
            continue  # inside a declaration: counted where the entity is used
        if ref.group(1) in decls:
            total += size(ref.group(1))
            if total > limit:
                raise GraphFormatError(f"XML entities expand to more than {limit} characters (an entity expansion "
                                       f"attack?); refusing to parse", source=source,
                                       line=text.count("\n", 0, ref.start()) + 1)


def _bad_syntax_line(exc: BadSyntax, text: str) -> int:
    """The line of the error position (rdflib's own line count runs ahead after some errors)."""
    doc, pos = getattr(exc, "_str", None), getattr(exc, "_i", None)
    if isinstance(doc, bytes) and isinstance(pos, int) and len(doc) == len(text.encode("utf-8")):
        return text.count("\n", 0, pos) + 1
    return min(exc.lines + 1, text.count("\n") + 1)


class _LineCountingNTParser(W3CNTriplesParser):
    """rdflib's N-Triples parser, remembering the line it is on so errors can cite it."""

    def __init__(self, sink: NTGraphSink):
        super().__init__(sink)
        self.lineno = 0

    def readline(self) -> str | None:
        line = super().readline()
        self.lineno += line is not None
        return line


def _parse_ntriples(g: Graph, text: str, source: str) -> None:
    parser = _LineCountingNTParser(NTGraphSink(g))
    try:
        parser.parse(io.StringIO(text))
    except ParserError as exc:
        raise GraphFormatError(f"N-Triples syntax error: {exc}", source=source, line=parser.lineno) from None


def rdf_to_graph(g: Graph, source: str = "", extra_relations: Sequence[str] = ()) -> KnowledgeGraph:
    """Concepts (linked or typed IRIs) become nodes; concept links (see :func:`link_rule`) become edges, and every
    other IRI-valued property of a concept (annotation properties) a node attribute counted for `graph inspect`."""
    schema = {s for t in SCHEMA_TYPES for s in g.subjects(RDF.type, t)}
    deprecated = {s for s in g.subjects(OWL.deprecated, None) if _true(g.value(s, OWL.deprecated))}
    is_link = link_rule(g, extra_relations)
    ids: dict[URIRef, str] = {}

    def node_id(iri: URIRef) -> str:
        if iri not in ids:
            ids[iri] = _curie(g, iri)
        return ids[iri]

    edges: set[tuple[URIRef, URIRef, str]] = set()
    attributes: list[tuple[URIRef, str, URIRef]] = []
    for s, p, o in g:
        if not isinstance(s, URIRef) or s in schema or o in schema or s in deprecated or o in deprecated:
            continue
        if p == RDFS.subClassOf and isinstance(o, BNode):
            prop, target = g.value(o, OWL.onProperty), g.value(o, OWL.someValuesFrom)
            if isinstance(prop, URIRef) and isinstance(target, URIRef):
                edges.add((s, target, _relation_name(g, prop)))
        elif not isinstance(o, URIRef) or p == RDF.type:
            continue
        elif p == RDFS.subClassOf:
            edges.add((s, o, "is_a"))
        elif p == SKOS.broader:
            edges.add((s, o, "broader"))
        elif p == SKOS.narrower:
            edges.add((o, s, "broader"))
        elif is_link(p):
            edges.add((s, o, _relation_name(g, p)))
        else:
            attributes.append((s, _relation_name(g, p), o))

    concepts = {s for s, t in g.subject_objects(RDF.type)
                if isinstance(s, URIRef) and s not in schema and s not in deprecated}
    concepts.update(x for s, o, _ in edges for x in (s, o))
    builder = GraphBuilder(source)
    for iri in sorted(concepts, key=node_id):
        builder.add_node(node_id(iri), _best_literal(g, iri, LABELS), _best_literal(g, iri, DEFINITIONS),
                         type=_node_type(g, iri), synonyms=sorted(_clean(x) for p in SYNONYMS for x in g.objects(iri, p)
                                                                  if isinstance(x, Literal)))
    for s, o, rel in sorted(edges, key=lambda e: (node_id(e[0]), e[2], node_id(e[1]))):
        builder.add_edge(node_id(s), node_id(o), rel)
    for s, name, o in attributes:
        builder.add_attribute(node_id(s), name, node_id(o))
    if deprecated:
        log.warning("%s: skipped %d deprecated classes (owl:deprecated)", source, len(deprecated))
    return builder.build(dangling="add")


def link_rule(g: Graph, extra_relations: Sequence[str] = ()) -> Callable[[URIRef], bool]:
    """Which properties (besides rdfs:subClassOf, existential restrictions and skos:broader/narrower) link two
    concepts: SKOS hierarchy and mapping links, properties the file declares as object properties, the OBO
    relations (RO / BFO) unless the file declares them otherwise, and those the user names in
    ``extra_relations`` (an IRI or the CURIE `graph inspect` shows).  Annotation properties (oboInOwl:inSubset,
    IAO:0100001 'term replaced by', rdfs:seeAlso, ...) and undeclared properties are not links."""
    declared = {p for t in OBJECT_PROPERTY_TYPES for p in g.subjects(RDF.type, t)}
    refused = {p for t in (OWL.AnnotationProperty, OWL.DatatypeProperty) for p in g.subjects(RDF.type, t)}
    wanted = {str(x).strip() for x in extra_relations}

    def is_link(p: URIRef) -> bool:
        if str(p) in wanted or _relation_name(g, p) in wanted or _curie(g, p) in wanted:
            return True
        if p in SKOS_LINKS or p in declared:
            return True
        return p not in refused and _KNOWN_OBJECT_PROPERTY.match(p) is not None

    return is_link


def _true(value: object) -> bool:
    return isinstance(value, Literal) and str(value).strip().lower() in ("true", "1")


def _curie(g: Graph, iri: URIRef) -> str:
    """``prefix:local`` when a prefix is bound (OBO PURLs as ``HP:0000118``), else the full IRI."""
    obo = _OBO_PURL.match(iri)
    if obo:
        return f"{obo.group(1)}:{obo.group(2)}"
    try:
        return g.namespace_manager.curie(iri, generate=False)
    except (KeyError, ValueError):
        return str(iri)


def _relation_name(g: Graph, prop: URIRef) -> str:
    """Relation names are CURIEs like ``ex:causes``, or the IRI's local name without a prefix."""
    name = _curie(g, prop)
    return name if name != str(prop) else re.split(r"[#/]", name.rstrip("#/"))[-1] or name


def _node_type(g: Graph, iri: URIRef) -> str:
    specific = sorted(_relation_name(g, t).split(":")[-1] for t in g.objects(iri, RDF.type)
                      if isinstance(t, URIRef) and t not in GENERIC_TYPES)
    return specific[0] if specific else "concept"


def _best_literal(g: Graph, iri: URIRef, predicates: tuple[URIRef, ...]) -> str | None:
    """English first, then untagged, then any language; earlier predicates win ties."""
    candidates = []
    for rank, pred in enumerate(predicates):
        for lit in g.objects(iri, pred):
            if isinstance(lit, Literal) and str(lit).strip():
                lang = (lit.language or "").lower()
                lang_rank = 0 if lang == "en" else 1 if lang.startswith("en-") else 2 if not lang else 3
                candidates.append((lang_rank, rank, _clean(lit)))
    return min(candidates)[2] if candidates else None


def _clean(text: Literal) -> str:
    return " ".join(str(text).split())
