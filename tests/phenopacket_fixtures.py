"""Small GA4GH phenopacket v2 documents with real HPO terms and OMIM diseases, good and bad, for the tests."""
from __future__ import annotations

import copy
import json
from pathlib import Path


def phenopacket(pid: str, disease=("OMIM:615032", "Intellectual developmental disorder with autism and macrocephaly"),
                observed=("HP:0000256", "HP:0001252"), excluded=("HP:0000365",), gene="CHD8",
                pmid="PMID:38428335", sex="MALE") -> dict:
    """Shaped like phenopacket-store's files (notebooks/CHD8/phenopackets/PMID_38428335_Patient.json)."""
    feats = [{"type": {"id": t, "label": ""}} for t in observed]
    feats += [{"type": {"id": t, "label": ""}, "excluded": True} for t in excluded]
    return {
        "id": pid,
        "subject": {"id": pid, "timeAtLastEncounter": {"age": {"iso8601duration": "P21Y"}}, "sex": sex},
        "phenotypicFeatures": feats,
        "interpretations": [{"id": pid, "progressStatus": "SOLVED", "diagnosis": {
            "disease": {"id": disease[0], "label": disease[1]},
            "genomicInterpretations": [{"subjectOrBiosampleId": pid, "interpretationStatus": "CAUSATIVE",
                                        "variantInterpretation": {"variationDescriptor": {
                                            "id": "var1", "geneContext": {"valueId": "HGNC:20153", "symbol": gene}}}}],
        }}],
        "diseases": [{"term": {"id": disease[0], "label": disease[1]},
                      "onset": {"ontologyClass": {"id": "HP:0003577", "label": "Congenital onset"}}}],
        "metaData": {"phenopacketSchemaVersion": "2.0",
                     "externalReferences": [{"id": pmid, "reference": "https://pubmed.ncbi.nlm.nih.gov/"}]},
    }


def without_diagnosis(pid: str) -> dict:
    doc = copy.deepcopy(phenopacket(pid))
    doc.pop("interpretations")
    doc.pop("diseases")
    return doc


def write(folder: Path, rel: str, doc) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1), encoding="utf-8")
    return path
