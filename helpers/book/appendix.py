"""The appendix: every numbered table of the two papers rebuilt from the tables the chapters
recorded (:mod:`helpers.book.results`), with the published value beside ours, "real" or "simulated"
on every row, and the difference (ours minus paper) where the two measure the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.book.provenance import beside_published, published_table, with_differences
from helpers.book.results import RESULTS_DIR, load_table

ONLINE_ONLY = ("not in the paper's text: Supplementary Tables 3-8 are only in its online full "
               "text, so there is no published value to set beside ours")
DISEASE_TABLES = {"idiopathic_pulmonary_fibrosis": "Supplementary Table 4", "copd":
                  "Supplementary Table 5", "parkinsons_disease": "Supplementary Table 6",
                  "heart_failure": "Supplementary Table 7"}


@dataclass
class PaperTable:
    """One rebuilt table: which paper and table, the rows, and how to read the comparison."""

    paper: str
    label: str
    table: pd.DataFrame
    note: str
    profile: str = ""
    seed: int | None = None


def _made(paper: str, label: str, table: pd.DataFrame, note: str, source: pd.DataFrame
          ) -> PaperTable:
    return PaperTable(paper, label, table, note, source.attrs.get("profile", ""),
                      source.attrs.get("seed"))


def p1_table1(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Table 1: hold-out metrics per modality."""
    ours = load_table("p1_transformer_clock", "table1", root)
    long = ours.melt(id_vars=["metric", "data"], var_name="modality", value_name="value")
    paper = published_table("precious1gpt_table1").query("table == 'Table 1'")
    table = beside_published(long, paper, ["metric", "modality"], ["value"])
    return _made("Precious1GPT", "Table 1", table,
                 "n is the size of each hold-out: the simulated cohorts are smaller than the "
                 "paper's, so its difference only records that.", ours)


def _mean(text: str) -> float:
    return float(str(text).split("±")[0])


def p1_supp_table1(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Supplementary Table 1: cross-validation, mean and sd over folds."""
    ours = load_table("p1_transformer_clock", "supp_table1", root)
    long = ours.melt(id_vars=["metric", "data"], var_name="modality", value_name="mean ± sd")
    long["value"] = long["mean ± sd"].map(_mean)
    paper = published_table("precious1gpt_table1").query("table == 'Supplementary Table 1'")
    table = beside_published(long, paper, ["metric", "modality"], ["value"])
    table = table.merge(paper[["metric", "modality", "sd"]].rename(columns={"sd": "paper sd"}),
                        on=["metric", "modality"], how="left")
    return _made("Precious1GPT", "Supplementary Table 1", table,
                 "value is the mean over folds; the difference compares means.", ours)


def p1_supp_table2(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Supplementary Table 2: hold-out metrics per tissue and modality."""
    ours = load_table("p1_transformer_clock", "supp_table2", root)
    paper = published_table("precious1gpt_supp_table2")
    table = beside_published(ours, paper, ["tissue", "modality"], ["MAE", "R2", "test_samples"])
    return _made("Precious1GPT", "Supplementary Table 2", table,
                 "rows are the book's tissues; a tissue the paper lists but the simulator lacks "
                 "is absent.", ours)


def p1_table2(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Table 2: Reactome pathways of the regressor's top-100 SHAP genes."""
    ours = load_table("p1_enrichment", "table2", root)
    table = ours.rename(columns={"paper_p_value": "p (paper)", "p_value": "p (ours)",
                                 "rank": "rank (ours)", "in_our_list": "p < 0.05 (ours)"})
    keep = ["reactome_id", "pathway", "p (paper)", "p (ours)", "adjusted_p", "rank (ours)",
            "p < 0.05 (ours)", "paper_odds_ratio", "paper_combined_score", "data"]
    return _made("Precious1GPT", "Table 2", table[[c for c in keep if c in table.columns]],
                 "our gene list comes from models trained on simulated data (planted on these "
                 "pathways) and is tested against real Reactome; p-values of different gene "
                 "lists are not differenced.", ours)


def p1_supp_table3(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Supplementary Table 3 (top rows): the regressor's SHAP gene ranking."""
    ours = load_table("p1_transfer_learning", "supp_table3", root)
    return _made("Precious1GPT", "Supplementary Table 3 (top 25)", ours, ONLINE_ONLY, ours)


def p1_supp_tables_4_7(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Supplementary Tables 4-7 (top rows): the aging-aware classifiers' genes."""
    parts = []
    for disease, label in DISEASE_TABLES.items():
        part = load_table("p1_transfer_learning", f"supp_table_{disease}", root)
        parts.append(part.assign(table=label, disease=disease))
    table = pd.concat(parts, ignore_index=True)
    first = ["table", "disease", "gene"]
    return _made("Precious1GPT", "Supplementary Tables 4-7 (top 10 each)",
                 table[first + [c for c in table.columns if c not in first]], ONLINE_ONLY,
                 parts[0])


def p1_supp_table8(root: Path = RESULTS_DIR) -> PaperTable:
    """Precious1GPT Supplementary Table 8: case-control metrics with and without pretraining."""
    ours = load_table("p1_transfer_learning", "supp_table8", root)
    return _made("Precious1GPT", "Supplementary Table 8", ours, ONLINE_ONLY, ours)


def h_table1(root: Path = RESULTS_DIR) -> PaperTable:
    """HallmarkAge Table 1: the muscle atlas by subset (donors, old and young cells)."""
    ours = load_table("h1_hallmark_scores", "table1", root)
    counts = ["donors", "old_cells", "young_cells", "cells"]
    table = with_differences(ours.rename(columns={c: f"{c} (paper)" for c in counts}), counts,
                             ["subset"])
    return _made("HallmarkAge", "Table 1", table,
                 "the simulated atlas is drawn to the paper's subsets and donors at the chosen "
                 "profile's size (the paper profile has the paper's 423,086 cells), so cell "
                 "differences measure the profile's scale, not an error.", ours)


def h_table2(root: Path = RESULTS_DIR) -> PaperTable:
    """HallmarkAge Table 2: residual-stratified clusters in hallmark space, ours then paper's."""
    ours = load_table("h2_clock_diagnostics", "table2", root)
    paper = published_table("hallmarkage_table2").assign(data="paper: real")
    paper = paper.rename(columns={"mean_residual": "mean residual",
                                  "residual_class": "residual class",
                                  "top_hallmarks": "top hallmarks",
                                  "mechanism_label": "mechanism"})
    ours = ours.rename(columns={"hallmark_cluster": "cluster"})
    table = pd.concat([ours.assign(source="this book"), paper.assign(source="paper")],
                      ignore_index=True)
    first = ["source", "cluster"]
    return _made("HallmarkAge", "Table 2", table[first + [c for c in table.columns
                                                          if c not in first]],
                 "clusters are found afresh on each atlas, so cluster numbers do not "
                 "correspond and rows are not differenced.", ours)


def _clock_table(chapter: str, name: str, paper: pd.DataFrame, keys: list[str],
                 rename: dict, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ours = load_table(chapter, name, root)
    metrics = ["MAE", "RMSE", "R2", "pearson_r"]
    return beside_published(ours.rename(columns=rename), paper, keys, metrics), ours


def h_table_s3(root: Path = RESULTS_DIR) -> PaperTable:
    """HallmarkAge Table S3: the three ridge clocks under donor-level splits."""
    paper = published_table("hallmarkage_table_s3")
    table, ours = _clock_table("h2_hallmark_clocks", "table_s3", paper,
                               ["Model", "Level", "Split"], {}, root)
    return _made("HallmarkAge", "Table S3", table,
                 "ours: pooled out-of-fold predictions over folds of people (Test) and the refit "
                 "on all donors (Train); the paper: one 80/20 split of 95 donor x dataset "
                 "units, its Train rows scored on the 80% part.", ours)


def h_table_s4_s5(table_name: str, root: Path = RESULTS_DIR) -> PaperTable:
    """HallmarkAge Table S4 (leave one batch out) or S5 (leave one dataset out)."""
    column = {"S4": "held-out batch", "S5": "held-out dataset"}[table_name]
    paper = published_table("hallmarkage_table_s4_s5").query("table == @table_name")
    table, ours = _clock_table("h2_hallmark_clocks", f"table_{table_name.lower()}", paper,
                               ["held_out", "Model"], {column: "held_out"}, root)
    return _made("HallmarkAge", f"Table {table_name}", table,
                 "metacell level; donors appear on both sides, as in the paper.", ours)


def h_table_s2() -> PaperTable:
    """HallmarkAge Table S2 (literature evidence for residual-associated genes): the paper's
    curation of published experiments, shown as published; nothing in it is computed."""
    table = published_table("hallmarkage_table_s2").assign(
        source="paper (published)", data="paper: literature curation")
    return PaperTable("HallmarkAge", "Table S2", table,
                      "published only: a literature curation, which no data of this book can "
                      "recompute.")


def h_table_s13() -> PaperTable:
    """HallmarkAge Table S13 (multi-tissue atlas): not built by this book."""
    table = pd.DataFrame([{"status": "not built", "data": "none",
                           "why": "the multi-tissue atlas (muscle + Tabula Sapiens, 1.4M cells) "
                                  "is out of reach and not simulated"}])
    return PaperTable("HallmarkAge", "Table S13", table, "not built.")


def all_tables(root: Path = RESULTS_DIR) -> list[PaperTable]:
    """Every numbered table of both papers, in the papers' order."""
    return [p1_table1(root), p1_table2(root), p1_supp_table1(root), p1_supp_table2(root),
            p1_supp_table3(root), p1_supp_tables_4_7(root), p1_supp_table8(root),
            h_table1(root), h_table2(root), h_table_s2(), h_table_s3(root),
            h_table_s4_s5("S4", root), h_table_s4_s5("S5", root), h_table_s13()]


def index(tables: list[PaperTable]) -> pd.DataFrame:
    """One line per rebuilt table: rows, data kinds, whether a published value is beside ours,
    and the profile and seed of the chapter run it came from."""
    rows = []
    for t in tables:
        compared = [c for c in t.table.columns if str(c).endswith("(paper)")]
        rows.append({"paper": t.paper, "table": t.label, "rows": len(t.table),
                     "data": "; ".join(sorted(t.table["data"].astype(str).unique())),
                     "published values beside ours": bool(compared) or "source" in t.table,
                     "profile": t.profile, "seed": t.seed})
    return pd.DataFrame(rows).astype({"seed": "Int64"})

