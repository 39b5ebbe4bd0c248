"""The two papers' pipeline diagrams, drawn with matplotlib when the book is built (a Sphinx
extension listed in ``_config.yml``): no graphviz, no network, and they change with this file.

``book/intro.md`` shows ``book/_generated/<name>.svg``; the folder is generated, never committed.
"""

from __future__ import annotations

from pathlib import Path

# (column, row, text, kind); kind colours the box: data, step, model, result
Box = tuple[float, float, str, str]
COLOURS = {"data": "#dbe9f6", "step": "#f2f2f2", "model": "#fde6c8", "result": "#dff0d8"}
FONT_PT = 9

PRECIOUS1GPT: dict = {
    "title": "Precious1GPT: one transformer, two kinds of molecular data",
    "boxes": {
        "meth": (0, 0, "DNA methylation\n450k beta values\n(EWAS Data Hub)", "data"),
        "rna": (2, 0, "RNA-seq\nTPM, protein-coding genes\n(GTEx)", "data"),
        "tss": (0, 1, "mean beta of each gene's\nTSS200 probes", "step"),
        "norm": (2, 1, "log, ComBat,\nquantile normalisation", "step"),
        "table": (1, 2, "one table: gene features\n+ tissue and modality\n(categorical)", "step"),
        "model": (1, 3, "TabTransformer regressor\ntuned with Optuna\n(age in years)", "model"),
        "valid": (0, 4, "validation: iPSC\nreprogramming, fetal\nsamples", "result"),
        "transfer": (2, 4, "transfer learning:\ncase-control classifiers", "model"),
        "shap": (2, 5, "SHAP gene rankings\n(Supp. Tables 3-7)", "result"),
        "reactome": (1, 5, "Reactome enrichment\n(Table 2)", "result"),
    },
    "arrows": [("meth", "tss"), ("rna", "norm"), ("tss", "table"), ("norm", "table"),
               ("table", "model"), ("model", "valid"), ("model", "transfer"),
               ("transfer", "shap"), ("shap", "reactome")],
}

HALLMARKAGE: dict = {
    "title": "HallmarkAge: from hallmark gene sets to hallmark-aware clocks",
    "boxes": {
        "atlas": (0, 0, "single-cell atlas\n(counts, donor ages)", "data"),
        "sets": (2, 0, "hallmark gene sets\n(seven frameworks)", "data"),
        "scores": (1, 1, "per-cell hallmark scores\n(scanpy score_genes)", "step"),
        "states": (0, 2, "ON/OFF hallmark states\n(score thresholds)", "step"),
        "meta": (2, 2, "pseudobulk metacells per\ndonor: genes + hallmark\nscores", "step"),
        "classifiers": (0, 3, "per-hallmark state\nclassifiers", "model"),
        "clocks": (2, 3, "ridge clocks: baseline,\nhallmark, hybrid\n(donor-level splits)",
                   "model"),
        "space": (0, 4, "hallmark space:\nembedding, clusters", "result"),
        "residuals": (2, 4, "coefficients and\nresiduals: targets", "result"),
    },
    "arrows": [("atlas", "scores"), ("sets", "scores"), ("scores", "states"),
               ("scores", "meta"), ("states", "classifiers"),
               ("meta", "clocks"), ("classifiers", "space"), ("clocks", "residuals")],
}

DIAGRAMS = {"precious1gpt_pipeline": PRECIOUS1GPT, "hallmarkage_pipeline": HALLMARKAGE}


def draw(diagram: dict):
    """A matplotlib figure of ``diagram``: labelled boxes on a grid, arrows between them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    boxes = diagram["boxes"]
    rows = max(b[1] for b in boxes.values()) + 1
    width, height, dx, dy = 2.3, 0.8, 2.6, 1.15
    fig, ax = plt.subplots(figsize=(7.6, 0.95 * rows + 0.5))
    ax.set_xlim(-0.2, 2 * dx + width + 0.2)
    ax.set_ylim(-(rows - 1) * dy - height / 2 - 0.15, height / 2 + 0.35)
    ax.axis("off")
    centre = {}
    for name, (column, row, text, kind) in boxes.items():
        x, y = column * dx + width / 2, -row * dy
        centre[name] = (x, y)
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02", facecolor=COLOURS[kind],
                                    edgecolor="#555555", linewidth=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=FONT_PT)
    for start, end in diagram["arrows"]:
        (x0, y0), (x1, y1) = centre[start], centre[end]
        if abs(y0 - y1) < 1e-9:  # same row: side to side
            sign = 1 if x1 > x0 else -1
            a, b = (x0 + sign * width / 2, y0), (x1 - sign * width / 2, y1)
        else:
            a, b = (x0, y0 - height / 2), (x1, y1 + height / 2)
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10,
                                     color="#333333", linewidth=0.9))
    ax.set_title(diagram["title"], fontsize=FONT_PT + 2, loc="left")
    fig.tight_layout()
    return fig


def write_all(folder: Path) -> list[Path]:
    """Draw every diagram into ``folder`` as SVG; returns the files written."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, diagram in DIAGRAMS.items():
        fig = draw(diagram)
        path = folder / f"{name}.svg"
        fig.savefig(path, format="svg", metadata={"Date": None})
        plt.close(fig)
        written.append(path)
    return written


def _on_builder_inited(app) -> None:
    write_all(Path(app.srcdir) / "book" / "_generated")


def setup(app):
    """Sphinx extension entry point: draw the diagrams before the sources are read."""
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
