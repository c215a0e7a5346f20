"""A quick health report on a loaded graph: sizes, hierarchy roots, cycles, loose ends.

Run before training so that a broken ontology (cycles, dangling references, unnamed
nodes) is noticed as such rather than as poor distillation results.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .kg import KnowledgeGraph

HIERARCHY_RELATIONS = ("is_a", "broader")
SHOWN_ROOTS = 10
SHOWN_CYCLES = 3
CYCLE_LIMIT = 100


def inspect_graph(g: KnowledgeGraph) -> dict[str, Any]:
    """Summary numbers and examples; roots and cycles use is_a/broader edges when the graph has any."""
    counts = g.relation_counts()
    hierarchy = [r for r in HIERARCHY_RELATIONS if counts.get(r)]
    relations = hierarchy or None
    roots = g.roots(relations)
    cycles = g.find_cycles(relations, limit=CYCLE_LIMIT)
    degree = np.bincount(np.concatenate([g.edge_src, g.edge_dst]), minlength=g.num_nodes)
    return {
        "source": g.source,
        "nodes": g.num_nodes,
        "edges": g.num_edges,
        "relations": {r: c for r, c in counts.items() if c},
        "not_relations": dict(g.attribute_counts),  # links read as node attributes (annotation properties)
        "node_types": g.type_counts(),
        "hierarchy_relations": hierarchy or "all",
        "num_roots": len(roots),
        "roots": roots[:SHOWN_ROOTS],
        "num_cycles": len(cycles),
        "cycles_capped": len(cycles) >= CYCLE_LIMIT,
        "cycles": cycles[:SHOWN_CYCLES],
        "dangling": list(g.dangling),
        "isolated": int(np.count_nonzero(degree == 0)),
        "unnamed": sum(1 for nid, name in zip(g.ids, g.names) if not name or name == nid),
    }


def format_inspection(d: dict[str, Any]) -> str:
    """The report of :func:`inspect_graph` as readable lines."""
    hierarchy = d["hierarchy_relations"]
    cycles = f"{d['num_cycles']}{'+' if d['cycles_capped'] else ''}"
    lines = [
        f"graph: {d['source'] or '(in memory)'}",
        f"nodes: {d['nodes']}   edges: {d['edges']}",
        "relations: " + (", ".join(f"{r}={c}" for r, c in d["relations"].items()) or "none"),
        *([f"not relations (kept as node attributes): {', '.join(f'{r}={c}' for r, c in d['not_relations'].items())}"
           " (read one as a relation: --relation NAME, or graph.extra_relations)"] if d.get("not_relations") else []),
        "node types: " + ", ".join(f"{t}={c}" for t, c in d["node_types"].items()),
        f"hierarchy: {', '.join(hierarchy) if isinstance(hierarchy, list) else hierarchy} edges",
        f"roots: {d['num_roots']}" + (f" (first: {', '.join(d['roots'])})" if d["roots"] else ""),
        f"cycles: {cycles}",
        *(f"  cycle: {' -> '.join(c + c[:1])}" for c in d["cycles"]),
        f"dangling ids: {len(d['dangling'])}" + (f" (first: {', '.join(d['dangling'][:SHOWN_ROOTS])})"
                                                  if d["dangling"] else ""),
        f"isolated nodes: {d['isolated']}",
        f"nodes without a name: {d['unnamed']}",
    ]
    if "indistinguishable" in d:
        ind = d["indistinguishable"]
        lines.append(f"candidates the graph cannot tell apart (neighbourhood Jaccard >= {ind['threshold']}): "
                     f"{ind['candidates_in_groups']} in {len(ind['groups'])} groups")
        lines += [f"  {', '.join(g)}" for g in ind["groups"][:SHOWN_CYCLES * 3]]
    return "\n".join(lines)
