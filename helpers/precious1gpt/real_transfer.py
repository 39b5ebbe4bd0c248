"""The real regressor and the real Parkinson's disease cohort: Precious1GPT's transformer
trained on every sample of the real cohorts (:mod:`helpers.precious1gpt.real_cohort`), and the
GSE7621 substantia nigra arrays put on its RNA-seq training scale, for transfer learning and
SHAP on real data.

Arrays (log2 RMA) and RNA-seq (log2 CPM) have different value distributions, so each array
sample is quantile-mapped onto the training expression distribution (rank for rank, over the
regressor's expression genes) before the regressor's own gene scaling: the paper's
quantile normalisation, with the training data as the target.
"""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pandas as pd

from helpers.common import expression
from helpers.data.cache import cache_key, output_dir, source_digest
from helpers.precious1gpt import (
    clock_problem,
    multimodal,
    real_cohort,
    transfer,
    transformer_clock,
)

CHAPTER = "p1_real_regressor"  # the cache folder the real regressor is kept in
PD_TISSUE = "Brain"  # substantia nigra: the brain level the regressor learned (methylation)


def code_version() -> str:
    """A hash of the code that builds and trains the real regressor."""
    return source_digest(real_cohort, multimodal, transformer_clock, clock_problem, __file__)


def array_genes() -> pd.Index:
    """The genes the GSE7621 arrays measure (what the real regressor's expression space is
    limited to), read once from the hash-verified files and then from the cache."""
    from helpers.data import loaders
    from helpers.data.cache import cached_frame
    from helpers.data.registry import load_registry

    registry = load_registry()
    params = {"files": [registry[k].sha256 for k in ("gse7621_expression", "gse7621_samples")]}
    frame = cached_frame("gse7621-genes", params, lambda: pd.DataFrame(
        {"gene": list(loaders.load_gse7621().var_names)}))
    return pd.Index(frame["gene"].astype(str), name="gene")


def expression_space(gtex: pd.DataFrame, measured: pd.Index, min_log_cpm: float = 1.0
                     ) -> tuple[pd.Index, pd.DataFrame]:
    """The regressor's expression genes: expressed in GTEx (log2 CPM above ``min_log_cpm`` in
    half the samples) and measured by the array cohort it will be transferred to, with a
    coverage report (genes at each step)."""
    expressed = real_cohort.expressed_genes(gtex, min_log_cpm)
    genes = expressed.intersection(measured).sort_values()
    report = pd.DataFrame({"step": ["protein-coding genes in all GTEx files",
                                    f"expressed (log2 CPM > {min_log_cpm:g} in half)",
                                    "also measured on the arrays"],
                           "genes": [gtex.shape[1], len(expressed), len(genes)]})
    return genes, report


def cohort_data(measured: pd.Index, min_log_cpm: float = 1.0, probe_map=None):
    """The real cohort (both modalities) with the expression space restricted to genes the
    arrays measure; returns the clock data, the GTEx log2 CPM table and the coverage report."""
    from helpers.precious1gpt import anchors

    probe_map = anchors.tss_probe_map() if probe_map is None else probe_map
    methylation = [real_cohort.methylation_part(name, adata, tissue, "gene", probe_map)
                   for name, (adata, tissue) in real_cohort.load_methylation_sets().items()]
    counts, tables = real_cohort.load_expression_sets()
    gtex_parts = real_cohort.expression_parts(counts, tables)
    gtex = pd.concat([p.values for p in gtex_parts])
    genes, report = expression_space(gtex, measured, min_log_cpm)
    shared = {"methylation": real_cohort.shared_columns(p.values for p in methylation),
              "expression": genes}
    return real_cohort.clock_data(methylation + gtex_parts, shared), gtex, report


def regressor_for(profile: str, seed: int, max_epochs: int, patience: int, measured: pd.Index,
                  shap: dict, n_features: int = 500, min_log_cpm: float = 1.0
                  ) -> tuple[transformer_clock.SavedClock, dict]:
    """The real regressor for these settings: loaded when trained before (sha256-checked),
    else trained on every sample of the real cohort with the paper's configuration (a 10%
    validation split, stratified by modality, stops it) and saved. Its ``about`` keeps the
    training expression distribution (for quantile mapping), the coverage report and the
    genes ranked by mean absolute SHAP (``shap``: ``shap_explained``, ``shap_background``,
    ``shap_nsamples``; see :func:`ranking`)."""
    shap = {k: int(shap[k]) for k in ("shap_explained", "shap_background", "shap_nsamples")}
    settings = {"profile": profile, "seed": seed, "max_epochs": max_epochs,
                "patience": patience, "n_features": n_features, "min_log_cpm": min_log_cpm,
                "shap": shap,
                "measured": hashlib.sha256("\n".join(sorted(measured)).encode()).hexdigest(),
                "code": code_version()}
    folder = output_dir(CHAPTER, profile, seed) / f"regressor-{cache_key(CHAPTER, settings)[:16]}"
    if transformer_clock.is_trusted_clock(folder):
        clock = transformer_clock.load_clock(folder)
        return clock, clock.about
    data, gtex, report = cohort_data(measured, min_log_cpm)
    problem = clock_problem.clock_problem(
        data, seed, test=pd.Index([]), valid_size=0.1, max_epochs=max_epochs,
        patience=patience, group="donor", valid_stratify=("modality",), n_features=n_features,
        progress=False, workdir=folder.parent / "training")
    result = transformer_clock.fit("tabtransformer", transformer_clock.PAPER_HYPERPARAMETERS,
                                   problem.rows("fit"), problem.rows("valid"),
                                   problem.space.genes, problem.training, label="real regressor")
    genes = list(problem.space.measured("expression"))
    ranked = shap_ranking(result.model, problem, shap, seed)
    about = {**settings, "kind": "tabtransformer", "data": "real",
             "samples": {m: int((data.obs["modality"] == m).sum())
                         for m in ("methylation", "expression")},
             "expression_reference": expression.quantile_reference(gtex[genes]).tolist(),
             "coverage": report.to_dict(orient="list"),
             "ranking": ranked.reset_index().to_dict(orient="list")}
    transformer_clock.save_clock(folder, result, problem.space, about)
    clock = transformer_clock.load_clock(folder)
    return clock, clock.about


def shap_ranking(model, problem, shap: dict, seed: int) -> pd.DataFrame:
    """The regressor's genes by mean absolute SHAP (years) over about ``shap_explained`` of its
    samples spread over tissues and modalities, each against background samples of its own
    group. The regressor was fitted on every sample, so these are training samples: the
    ranking describes what the model uses, not how it generalises."""
    from helpers.precious1gpt import importance

    rows = problem.rows("train")
    explained = importance.stratified_rows(rows, shap["shap_explained"], seed)
    values = importance.explain(model, explained, rows, problem.space.genes, "years",
                                shap["shap_background"], shap["shap_nsamples"], seed)
    return importance.rank_genes(values, explained, problem.data.obs["modality"],
                                 problem.space.coverage())


def ranking(about: dict) -> pd.DataFrame:
    """The saved SHAP ranking of a real regressor (gene index, rank first)."""
    return pd.DataFrame(about["ranking"]).set_index("gene")


def pd_table(regressor, adata: ad.AnnData) -> pd.DataFrame:
    """GSE7621 in the regressor's space: each array quantile-mapped onto the training
    expression distribution over the regressor's expression genes, then scaled as its training
    samples were; tissue Brain, modality expression, ``case`` 1 for Parkinson's. A gene the
    regressor expects but the arrays lack is an error (never imputed)."""
    genes = list(regressor.space.measured("expression"))
    missing = sorted(set(genes) - set(adata.var_names))
    if missing:
        raise multimodal.MissingFeaturesError(
            f"GSE7621 lacks {len(missing)} of the regressor's {len(genes)} expression genes "
            f"(e.g. {missing[:5]})")
    reference = np.asarray(regressor.about["expression_reference"], dtype=float)
    mapped = expression.quantile_normalise(adata.to_df()[genes], target=reference)
    obs = adata.obs.assign(tissue=PD_TISSUE)
    table, _ = multimodal.encode(regressor.space, mapped, obs, "expression")
    table[transfer.LABEL] = adata.obs["case"].astype(int).to_numpy()
    return table


def coverage_report(about: dict) -> pd.DataFrame:
    """The regressor's expression-gene coverage steps as a table."""
    return pd.DataFrame(about["coverage"])
