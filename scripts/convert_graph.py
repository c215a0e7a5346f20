"""Convert a graph file between formats (e.g. the shipped Turtle graphs to GraphML / CSV).

Reads anything ``load_graph`` reads; writes GraphML when the output ends in
``.graphml``, otherwise a CSV folder (``nodes.csv`` + ``edges.csv``).

    python scripts/convert_graph.py graphs/machine_faults.ttl graphs/machine_faults.graphml
    python scripts/convert_graph.py graphs/machine_faults.ttl graphs/machine_faults_csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import networkx as nx

from kgdistill.errors import KGDistillError
from kgdistill.graph import KnowledgeGraph, load_graph
from kgdistill.graph.tabular import SYNONYM_SEPARATOR


def write_graphml(g: KnowledgeGraph, path: Path) -> None:
    """GraphML with the attributes ``read_graphml`` expects, synonyms joined by ``|``."""
    nxg = g.to_networkx()
    for i, nid in enumerate(g.ids):
        nxg.nodes[nid]["synonyms"] = SYNONYM_SEPARATOR.join(g.synonyms.get(i, []))
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(nxg, path, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="graph file or CSV folder to read")
    parser.add_argument("output", type=Path, help="*.graphml file, or a folder for nodes.csv + edges.csv")
    parser.add_argument("--format", default="auto", help="input format (default: from the extension)")
    args = parser.parse_args(argv)
    try:
        g = load_graph(args.input, format=args.format)
    except KGDistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.output.suffix.lower() == ".graphml":
        write_graphml(g, args.output)
    else:
        g.save_csv(args.output)
    print(f"{args.input} -> {args.output}: {g.num_nodes} nodes, {g.num_edges} edges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
