"""Human-readable outputs of a run: training curves, a 2-D map of the shared space, report.md."""
from __future__ import annotations

import csv
from pathlib import Path

import torch

# the baseline row is "text_baseline" (training-free, reads the graph) or "nearest_centroid" (labelled samples'
# centroids); runs made before those names call it "prototype"
ORDER = ("teacher", "text_baseline", "nearest_centroid", "prototype", "student_alone", "kd", "kg_guided",
         "kg_guided_no_fusion")


def _fmt(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def metrics_table(metrics: dict) -> str:
    methods = metrics["methods"]
    names = [m for m in ORDER if m in methods] + sorted(m for m in methods if m not in ORDER)
    lines = ["| method | seen top-1 | seen top-10 | seen MRR | unseen top-1 | unseen top-10 | unseen MRR | H (top-1) | mistake severity |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in names:
        e = methods[m]
        s, u = e.get("seen", {}), e.get("unseen", {})
        lines.append(f"| {m} | {_fmt(s.get('top1'))} | {_fmt(s.get('top10'))} | {_fmt(s.get('mrr'))} | "
                     f"{_fmt(u.get('top1'))} | {_fmt(u.get('top10'))} | {_fmt(u.get('mrr'))} | "
                     f"{_fmt(e.get('harmonic_top1'))} | {e.get('mistake_severity', float('nan')):.3f} |")
    return "\n".join(lines)


def write_report(rd, metrics: dict) -> Path:
    info = rd.info
    m = metrics["methods"]
    kg, alone, kd = m.get("kg_guided", {}), m.get("student_alone", {}), m.get("kd", {})
    lines = [
        f"# kgdistill run `{info['run_id']}`", "",
        f"Dataset `{metrics['dataset']}`: {metrics['num_candidates']} candidate concepts "
        f"({metrics['num_seen']} seen, {metrics['num_unseen']} unseen), {metrics['num_test']} test samples. "
        f"Chance top-1: {100 * metrics['chance_top1']:.2f}%. Device: {metrics['device']}; {metrics['seconds']} s.", "",
        "All figures in %, ranking each test sample over **all** candidate concepts. "
        "Calibration (seen-score offset gamma, text-baseline weight beta) was chosen on validation patients with "
        "some seen concepts held out as stand-ins for unseen ones; unseen concepts were never tuned on.", "",
        metrics_table(metrics), "",
        "## What the graph added", "",
    ]
    for name, base in (("student trained alone", alone), ("student with plain KD", kd)):
        if kg.get("seen") and base.get("seen"):
            d = 100 * (kg["seen"]["top1"] - base["seen"]["top1"])
            lines.append(f"- Seen top-1 vs {name}: {d:+.1f} points.")
    if kg.get("unseen"):
        lines.append(f"- Unseen top-10: {100 * kg['unseen']['top10']:.1f}% "
                     f"({kg['unseen']['top10'] / max(metrics['chance_top10'], 1e-9):.1f}x chance).")
    lines += ["", "Plots: `plots/training_curves.png`, `plots/shared_space.png`. Config: `config.yaml`.", ""]
    path = rd.path / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


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
