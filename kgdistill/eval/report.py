"""Human-readable outputs of a run: training curves, a 2-D map of the shared space, report.md."""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from .metrics import chance_levels

# the baseline row is "text_baseline" (training-free, reads the graph) or "nearest_centroid" (labelled samples'
# centroids); runs made before those names call it "prototype"
ORDER = ("teacher", "text_baseline", "nearest_centroid", "prototype", "student_alone", "kd", "kg_guided",
         "kg_guided_no_fusion")


# what each row is, by the kind of student (the report explains the rows a run has)
ROW_MEANING = {
    "teacher": "the rich modality's model (it trains the concept embeddings, teacher.concepts; the students learn "
               "from it)",
    "text_baseline": "training-free: each note compared with every concept's linked findings in the graph",
    "nearest_centroid": "the labelled student samples' class centroids (no graph; cannot rank unseen concepts)",
    "prototype": "the baseline row of a run made before it was named text_baseline / nearest_centroid",
    "student_alone": "the student trained on its few labels alone",
    "kd": "the student distilled from the teacher (KD), scored against a free embedding table",
    "kg_guided": "the graph-guided student: scored against the teacher's frozen concept embeddings"
                 " (fused: plus beta x the text baseline)",
    "kg_guided_no_fusion": "the graph-guided student's own space, without the text baseline",
}


def _fmt(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _sev(v) -> str:
    return "–" if v is None or v != v else f"{v:.3f}"


def shown_k(metrics: dict) -> list[int]:
    """The top-k figures that mean something: k below the number of candidates (top-10 of 10 is always 100%)."""
    k_all = sorted({int(k[3:]) for e in metrics["methods"].values() for g in ("seen", "unseen")
                    for k in e.get(g, {}) if k.startswith("top")})
    n = metrics.get("num_candidates") or round(1 / metrics["chance_top1"])
    return [k for k in k_all if k < n] or k_all[:1]


def metrics_table(metrics: dict) -> str:
    methods = metrics["methods"]
    names = [m for m in ORDER if m in methods] + sorted(m for m in methods if m not in ORDER)
    ks = shown_k(metrics)
    cols = [f"{g} top-{k}" for g in ("seen", "unseen") for k in ks]
    head = ["method", *cols[:len(ks)], "seen MRR", *cols[len(ks):], "unseen MRR", "H (top-1)", "mistake severity"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in names:
        e = methods[m]
        cells = [m]
        for g in ("seen", "unseen"):
            d = e.get(g, {})
            cells += [_fmt(d.get(f"top{k}")) for k in ks] + [_fmt(d.get("mrr"))]
        cells += [_fmt(e.get("harmonic_top1")), _sev(e.get("mistake_severity"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _calibration_line(metrics: dict) -> str:
    cal = metrics.get("calibration_pass") or {}
    if cal.get("ran", True):
        return ("Calibration (seen-score offset gamma, text-baseline weight beta) was chosen on validation samples "
                "with some seen concepts held out as stand-ins for unseen ones; unseen concepts were never tuned on.")
    return f"No calibration: {cal.get('reason', 'it did not run')}; every method ranks as trained."


def write_report(rd, metrics: dict) -> Path:
    info = rd.info
    m = metrics["methods"]
    roles = metrics.get("roles")
    lines = [
        f"# kgdistill run `{info['run_id']}`", "",
        f"Dataset `{metrics['dataset']}`: {metrics['num_candidates']} candidate concepts "
        f"({metrics['num_seen']} seen, {metrics['num_unseen']} unseen), {metrics['num_test']} test samples. "
        f"Chance top-1: {100 * metrics['chance_top1']:.2f}%. Device: {metrics['device']}; {metrics['seconds']} s.", "",
    ]
    if metrics.get("independent_graph"):
        g = metrics["independent_graph"]
        lines += [f"Graph: the annotations without the validation and test publications (independent): of "
                  f"{g['citing_heldout']} rows citing one, {g['removed']} removed, {g['recounted']} recounted without "
                  f"those patients ({g['recounted_to_zero']} to zero, {g['not_exact']} not exactly), {g['not_count']} "
                  f"kept as published (no count); {g['diseases_emptied']} candidates left without annotations.", ""]
    if roles:
        source = roles.get("teacher_concepts", "gnn")  # runs written before teacher.concepts: the GNN
        lines += [f"Teacher: modality `{roles['teacher']}` ({roles['teacher_kind']}), concept embeddings from "
                  f"`{source}` (teacher.concepts); student: modality `{roles['student']}` ({roles['student_kind']}).",
                  ""]
    lines += [f"All figures in %, ranking each test sample over **all** candidate concepts. {_calibration_line(metrics)}",
              "", metrics_table(metrics), "", "What each row is:", ""]
    lines += [f"- `{r}`: {ROW_MEANING[r]}" for r in ORDER if r in m and r in ROW_MEANING]
    lines += ["", "## What the graph added", "", *_graph_added(metrics)]
    if metrics.get("warnings"):
        lines += ["", "## Warnings", "", *(f"- {w}" for w in metrics["warnings"])]
    lines += ["", "Plots: `plots/training_curves.png`, `plots/shared_space.png`. Config: `config.yaml`.", ""]
    path = rd.path / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _graph_added(metrics: dict) -> list[str]:
    m = metrics["methods"]
    kg, out = m.get("kg_guided", {}), []
    for name, base in (("student trained alone", m.get("student_alone", {})), ("student with plain KD", m.get("kd", {}))):
        if kg.get("seen") and base.get("seen"):
            out.append(f"- Seen top-1 vs {name}: {100 * (kg['seen']['top1'] - base['seen']['top1']):+.1f} points.")
    ks = shown_k(metrics)
    if kg.get("unseen"):
        k = max(ks)
        chance = chance_levels(metrics["num_candidates"], (k,))[f"top{k}"]
        out.append(f"- Unseen top-{k}: {100 * kg['unseen'][f'top{k}']:.1f}% ({kg['unseen'][f'top{k}'] / chance:.1f}x "
                   "chance).")
    return out


def _read_log(path: Path) -> dict[str, list[float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows if r.get(k) not in (None, "")] for k in (rows[0] if rows else {})}


def write_plots(rd, concepts: torch.Tensor, seen, z_t: torch.Tensor, z_s: torch.Tensor, method: str) -> None:
    """Training curves from the logs; the shared space from the concepts' GNN embeddings ([K, d], ``seen`` [K]
    bool) and the test samples' embeddings (``z_t``, ``z_s``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    logs = sorted((rd.path / "logs").glob("*.csv"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for p in logs:
        d = _read_log(p)
        if "loss_total" in d:
            axes[0].plot(d["epoch"], d["loss_total"], label=p.stem)
            axes[1].plot(d["epoch"], d["val_mrr"], label=p.stem)
    axes[0].set(title="training loss", xlabel="epoch", yscale="log")
    axes[1].set(title="validation MRR (seen concepts)", xlabel="epoch")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(rd.path / "plots" / "training_curves.png", dpi=110)
    plt.close(fig)

    conc = torch.nn.functional.normalize(concepts.cpu(), dim=-1)
    pts = torch.cat([conc, z_t, z_s]).numpy()
    xy = PCA(n_components=2, random_state=0).fit_transform(pts)
    k, n = len(conc), len(z_t)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(*xy[k:k + n].T, s=6, alpha=0.35, c="tab:blue", label="teacher samples")
    ax.scatter(*xy[k + n:].T, s=6, alpha=0.35, c="tab:orange", label=f"student samples ({method})")
    ax.scatter(*xy[:k][seen].T, s=28, marker="^", c="black", label="seen concepts (GNN)")
    ax.scatter(*xy[:k][~seen].T, s=36, marker="*", c="red", label="unseen concepts (GNN)")
    ax.set(title="shared space (PCA)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(rd.path / "plots" / "shared_space.png", dpi=110)
    plt.close(fig)
