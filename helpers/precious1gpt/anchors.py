"""Real anchors of the Precious1GPT simulator: per-gene methylation baselines, age effects and
noise from the real GSE30870 gene-level matrix (newborns vs 89-103-year-olds), and expression
baselines and spread from the real GTEx skeletal-muscle profile."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy.special import logit

from helpers.common import expression
from helpers.common.clocks import horvath_transform
from helpers.data import loaders
from helpers.precious1gpt import promoters

BETA_CLIP = (0.005, 0.995)


def methylation_anchors(gene_betas: pd.DataFrame, ages: pd.Series,
                        precision_range: tuple[float, float] = (8, 400)) -> pd.DataFrame:
    """Per gene: newborn, old and pooled mean beta, the pooled-variance t statistic of old vs
    newborn, the logit slope per unit of Horvath's age transform, and a beta precision."""
    ages = pd.Series(ages, index=gene_betas.index)
    newborn, old = gene_betas[ages == 0], gene_betas[ages > 0]
    if len(newborn) < 2 or len(old) < 2:
        raise ValueError("methylation anchors need at least two newborns and two older samples")
    m0 = newborn.mean().clip(*BETA_CLIP)
    m1 = old.mean().clip(*BETA_CLIP)
    pooled = gene_betas.mean().clip(*BETA_CLIP)
    dof = len(newborn) + len(old) - 2
    within = ((len(newborn) - 1) * newborn.var() + (len(old) - 1) * old.var()) / dof
    within = within.clip(lower=1e-6)
    t = (m1 - m0) / np.sqrt(within * (1 / len(newborn) + 1 / len(old)))
    span = float(horvath_transform(ages[ages > 0].mean()) - horvath_transform(0.0))
    precision = (pooled * (1 - pooled) / within - 1).clip(*precision_range)
    return pd.DataFrame({"newborn_beta": m0, "old_beta": m1, "pooled_beta": pooled,
                         "t_statistic": t, "logit_slope": (logit(m1) - logit(m0)) / span,
                         "precision": precision})


def expression_anchors(log_expression: pd.DataFrame, min_sd: float = 0.1) -> pd.DataFrame:
    """Per gene: mean and SD of real log2 expression across samples (SD floored at ``min_sd``)."""
    return pd.DataFrame({"mean": log_expression.mean(),
                         "sd": log_expression.std().clip(lower=min_sd)})


def tss_probe_map() -> pd.DataFrame:
    """The real TSS200 / TSS1500 probe-to-gene map (450k probe locations x RefSeq TSSs),
    computed once per pair of registered files and mapping code, then read from the cache
    (several chapters need it; computing it takes seconds)."""
    from pathlib import Path

    from helpers.data.cache import cached_frame
    from helpers.data.registry import load_registry

    registry = load_registry()
    params = {"files": [registry[k].sha256 for k in ("hm450_locations", "refseq_tss_hg19")],
              "code": hashlib.sha256(Path(promoters.__file__).read_bytes()).hexdigest()}
    return cached_frame("p1-tss-probe-map", params, lambda: promoters.probe_gene_map(
        loaders.load_hm450_locations(), loaders.load_refseq_tss())).reset_index(drop=True)


def real_gene_level_gse30870(probe_map: pd.DataFrame, adata=None
                             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The real GSE30870 methylomes (``adata``, loaded when not given) as a TSS200 gene-level
    matrix, its coverage and the ages."""
    adata = loaders.load_gse30870() if adata is None else adata
    betas = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    matrix, coverage = promoters.gene_level_methylation(betas, probe_map, "TSS200")
    return matrix, coverage, adata.obs["age"]


def real_anchors(precision_range=(8, 400)) -> dict:
    """Everything the simulator takes from real files: the TSS200 map, gene universes, the
    methylation and expression anchors and the real GTEx age-bracket shares."""
    probe_map = tss_probe_map()
    gene_betas, coverage, ages = real_gene_level_gse30870(probe_map)
    log_cpm, symbol_report, traits = expression.real_muscle_log_cpm()
    gencode = loaders.load_gencode_v26()
    coding = set(gencode.loc[gencode["geneType"] == expression.PROTEIN_CODING, "geneSymbol"])
    tss200_genes = sorted(probe_map.loc[probe_map["region"] == "TSS200", "gene"].unique())
    return {
        "probe_map": probe_map,
        "methylation_genes": pd.Index(tss200_genes, name="gene"),
        "expression_genes": pd.Index([g for g in tss200_genes if g in coding], name="gene"),
        "methylation": methylation_anchors(gene_betas, ages, precision_range),
        "expression": expression_anchors(log_cpm),
        "gene_betas": gene_betas, "coverage": coverage, "ages": ages,
        "muscle_log_cpm": log_cpm, "muscle_symbol_report": symbol_report,
        "bracket_counts": traits["age_bracket"].value_counts().sort_index(),
    }
