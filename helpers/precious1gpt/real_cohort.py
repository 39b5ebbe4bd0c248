"""Precious1GPT's multimodal clock on real cohorts: the public methylomes and transcriptomes
the book can reach, put in one gene space the paper's way (TSS200 gene means for methylation,
gene symbols for expression), with the folds, the label rounding and the CpG-level comparison
that say what the real numbers rest on.

Methylation: GSE74193 brains (postnatal only: prenatal brains are kept for validation),
GSE30870 blood and GSE69852 adult livers. Expression: GTEx muscle, skin with fibroblasts, and
bladder. Every dataset's values are kept only for the genes it measures in full; the shared
space of a modality is what every one of its datasets covers (never an imputed value).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from helpers.common import expression
from helpers.precious1gpt import multimodal, real_fetal

GTEX_TISSUES = {"Cells - Transformed fibroblasts": "Fibroblasts", "Bladder": "Bladder",
                "Skin - Not Sun Exposed (Suprapubic)": "Skin",
                "Skin - Sun Exposed (Lower leg)": "Skin", "Muscle - Skeletal": "Muscle"}
AGE_LABELS = {"exact": "exact age (years)", "bracket": "decade bracket midpoint"}


@dataclass
class Part:
    """One real dataset as the cohort uses it: values (samples x features) and its sample table
    (age, tissue, modality, dataset, donor, how the age is known)."""

    name: str
    values: pd.DataFrame
    obs: pd.DataFrame


def sample_table(obs: pd.DataFrame, dataset: str, tissue, modality: str, age_known: str,
                 donor: pd.Series | None = None) -> pd.DataFrame:
    """The columns every part shares: ``age`` (years), ``tissue``, ``modality``, ``dataset``,
    ``donor`` (the sample id when one sample is one person) and ``age_known``."""
    if age_known not in AGE_LABELS:
        raise ValueError(f"age_known must be one of {list(AGE_LABELS)}, not {age_known!r}")
    if "age" not in obs.columns or obs["age"].isna().any():
        raise ValueError(f"{dataset}: every sample needs an age (field 'age')")
    table = pd.DataFrame({"age": obs["age"].astype(float), "tissue": tissue,
                          "modality": modality, "dataset": dataset,
                          "donor": obs.index.astype(str) if donor is None else donor,
                          "age_known": age_known}, index=obs.index.astype(str))
    return table


def postnatal(adata: ad.AnnData) -> ad.AnnData:
    """The samples born before they were measured (age >= 0): prenatal ones never train."""
    return adata[adata.obs["age"].to_numpy(float) >= 0].copy()


def shared_columns(frames) -> pd.Index:
    """The features every table measures (sorted): the shared space of one modality."""
    frames = list(frames)
    if not frames:
        raise ValueError("no tables given")
    shared = frames[0].columns
    for frame in frames[1:]:
        shared = shared.intersection(frame.columns)
    return shared.sort_values()


def symbol_counts(adata: ad.AnnData, genes: pd.DataFrame,
                  gene_type: str = expression.PROTEIN_CODING) -> pd.DataFrame:
    """Read counts renamed to protein-coding gene symbols (``genes``: Ensembl ids ->
    ``geneSymbol``, ``geneType``; ``gene_type`` as that table spells protein coding), one id
    per symbol."""
    counts, _ = expression.to_gene_symbols(adata.to_df(), genes, gene_type=gene_type)
    return counts


def log_cpm_on(counts: dict[str, pd.DataFrame], genes: pd.Index) -> dict[str, pd.DataFrame]:
    """log2(CPM + 1) of every dataset computed over the same ``genes``: a library size summed
    over different gene lists would put the datasets on different scales."""
    return {name: expression.log_expression(expression.cpm(frame[genes]))
            for name, frame in counts.items()}


def expressed_genes(values: pd.DataFrame, min_log_cpm: float = 1.0, share: float = 0.5
                    ) -> pd.Index:
    """Genes above ``min_log_cpm`` in at least ``share`` of the samples."""
    return values.columns[(values > min_log_cpm).mean() >= share]


def coverage(parts: list[Part], shared: dict[str, pd.Index]) -> pd.DataFrame:
    """Per dataset: modality, tissue(s), samples, how ages are known, the features with a value
    in every sample, and how many of them enter the modality's shared space."""
    rows = []
    for part in parts:
        modality = part.obs["modality"].iloc[0]
        rows.append({"dataset": part.name, "modality": modality,
                     "tissue": ", ".join(sorted(part.obs["tissue"].unique())),
                     "samples": len(part.obs),
                     "age": AGE_LABELS[part.obs["age_known"].iloc[0]],
                     "age range (years)": f"{part.obs['age'].min():.1f} to "
                                          f"{part.obs['age'].max():.1f}",
                     "genes with a value": int(part.values.notna().all().sum()),
                     "in the shared space": len(shared[modality])})
    return pd.DataFrame(rows)


def clock_data(parts: list[Part], shared: dict[str, pd.Index]) -> multimodal.ClockData:
    """The real cohort as the clock sees it: each modality's datasets stacked on its shared
    genes, target ``age`` (expression already log2 CPM: no ComBat, see the chapter)."""
    values, tables = {}, {}
    for modality in ("methylation", "expression"):
        mine = [p for p in parts if p.obs["modality"].iloc[0] == modality]
        if not mine:
            continue
        values[modality] = pd.concat([p.values[shared[modality]] for p in mine])
        tables[modality] = pd.concat([p.obs for p in mine])
    obs = pd.concat(tables.values())
    return multimodal.clock_data(values.get("methylation"), values.get("expression"),
                                 obs=obs, target="age", prepare=False, data="real")


def fold_strata(obs: pd.DataFrame, n_splits: int) -> pd.Series:
    """Modality and tissue joined, with a tissue of fewer than ``n_splits`` samples pooled
    into its modality's smallest tissue that has enough: every stratum can then reach every
    fold, and the pooling is named in the label."""
    label = obs["modality"].astype(str) + "|" + obs["tissue"].astype(str)
    counts = label.value_counts()
    for modality in obs["modality"].unique():
        mine = counts[counts.index.str.startswith(f"{modality}|")]
        small, large = mine[mine < n_splits], mine[mine >= n_splits]
        if small.empty:
            continue
        if large.empty:
            raise ValueError(f"{modality}: no tissue has {n_splits} samples to stratify by")
        host = large.sort_values(kind="stable").index[0]
        pooled = host + "+" + "+".join(s.split("|", 1)[1] for s in sorted(small.index))
        label = label.replace({name: pooled for name in [*small.index, host]})
    return label.rename("stratum")


def decade_midpoint(age: pd.Series) -> pd.Series:
    """The GTEx-style label of an exact age: the midpoint of its decade (43.2 -> 45.0)."""
    age = pd.Series(age, dtype=float)
    if (age < 0).any():
        raise ValueError("decade brackets are for postnatal ages (>= 0)")
    return (np.floor(age / 10) * 10 + 5).rename("age_bracketed")


def bracket_floor(age: pd.Series) -> float:
    """MAE of a perfect clock scored against decade midpoints: the error the rounding alone
    adds, on these samples' exact ages."""
    age = pd.Series(age, dtype=float)
    return float((age - decade_midpoint(age)).abs().mean())


def methylation_part(name: str, adata: ad.AnnData, tissue: str, level: str,
                     probe_map: pd.DataFrame | None = None) -> Part:
    """One methylation dataset (postnatal samples only) at ``level``: TSS200 gene means (the
    paper's feature) or the CpGs themselves; the sample table adds the decade label."""
    born = postnatal(adata)
    values = real_fetal.features(born, level, probe_map)
    obs = sample_table(born.obs, name, tissue, "methylation", "exact")
    obs["age_bracketed"] = decade_midpoint(obs["age"]).to_numpy()
    return Part(name, values, obs)


def expression_parts(counts: dict[str, pd.DataFrame], tables: dict[str, pd.DataFrame]
                     ) -> list[Part]:
    """GTEx datasets as log2(CPM + 1) over the protein-coding genes all of them measure
    (``counts``: name -> samples x symbols; ``tables``: name -> sample table from
    :func:`sample_table`)."""
    genes = shared_columns(counts.values())
    logged = log_cpm_on(counts, genes)
    return [Part(name, logged[name], tables[name]) for name in counts]


def load_methylation_sets() -> dict[str, tuple[ad.AnnData, str]]:
    """The registered real methylomes with their tissue: GSE74193 brains (both files),
    GSE30870 blood, GSE69852 livers (hash-verified by the loaders)."""
    from helpers.data import loaders

    return {"GSE74193": (loaders.load_gse74193(), "Brain"),
            "GSE30870": (loaders.load_gse30870(), "Blood"),
            "GSE69852": (loaders.load_gse69852(), "Liver")}


def load_expression_sets() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The registered GTEx read counts by protein-coding symbol and their sample tables:
    muscle (GENCODE v26 symbols), skin with fibroblasts and bladder (the files' HGNC symbols);
    ages are decade-bracket midpoints."""
    from helpers.data import loaders

    muscle = loaders.load_gtex_muscle()
    counts = {"GTEx muscle": symbol_counts(muscle, loaders.load_gencode_v26())}
    tables = {"GTEx muscle": sample_table(muscle.obs.assign(age=muscle.obs["age_midpoint"]),
                                          "GTEx muscle", "Muscle", "expression", "bracket")}
    for name, key in (("GTEx skin", "gtex_yarn_skin"), ("GTEx bladder", "gtex_yarn_bladder")):
        adata = loaders.load_gtex_expression_set(key)
        genes = adata.var.rename(columns={"hgnc_symbol": "geneSymbol",
                                          "gene_biotype": "geneType"})
        counts[name] = symbol_counts(adata, genes, gene_type="protein_coding")
        tissue = adata.obs["tissue"].map(GTEX_TISSUES)
        if tissue.isna().any():
            unknown = sorted(adata.obs["tissue"][tissue.isna()].unique())
            raise ValueError(f"{key}: field SMTSD has unknown tissue(s) {unknown}")
        tables[name] = sample_table(adata.obs, name, tissue.to_numpy(), "expression",
                                    "bracket", adata.obs["donor"])
    return counts, tables


def rounding_cost(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per fold, MAE against the exact ages of a clock trained on exact ages and of the same
    clock trained on decade midpoints (``predictions``: out-of-fold rows with ``labels``
    naming which)."""
    rows = []
    for (labels, repeat, fold), part in predictions.groupby(["labels", "repeat", "fold"]):
        rows.append({"labels": labels, "repeat": repeat, "fold": fold,
                     "MAE": float((part["predicted"] - part["age_exact"]).abs().mean())})
    return pd.DataFrame(rows)


def paired_folds(per_fold: pd.DataFrame, column: str, first: str, second: str,
                 value: str = "MAE") -> dict:
    """Fold-by-fold difference ``first`` - ``second`` of ``value`` (rows keyed by repeat and
    fold): its mean and sd and in how many folds ``first`` is lower. No p-value: folds share
    training samples, so they are not independent."""
    wide = per_fold.pivot_table(index=["repeat", "fold"], columns=column, values=value)
    if first not in wide.columns or second not in wide.columns:
        raise ValueError(f"{column} needs both {first!r} and {second!r}; has {list(wide.columns)}")
    difference = wide[first] - wide[second]
    return {"folds": len(difference), "mean_difference": float(difference.mean()),
            "sd_difference": float(difference.std(ddof=1)) if len(difference) > 1 else np.nan,
            "first_lower": int((difference < 0).sum())}
