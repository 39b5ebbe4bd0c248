"""Target prioritisation across diseases: an open stand-in for the paper's PandaOmics TargetID
step (proprietary). Genes in the top-k SHAP genes of several disease classifiers rank first,
then by their mean rank; each is annotated with its Open Genes aging mechanisms and diseases."""

from __future__ import annotations

import pandas as pd

from helpers.data import loaders


def shared_top_genes(rankings: dict[str, pd.DataFrame], top_k: int = 200) -> pd.DataFrame:
    """Genes in the top ``top_k`` of at least one disease: in how many diseases and which, and
    the mean rank over the diseases that list them; sorted by count, then mean rank."""
    ranks = pd.DataFrame({d: r["rank"] for d, r in rankings.items()})
    in_top = ranks <= top_k
    listed = in_top.any(axis=1)
    out = pd.DataFrame({
        "diseases": in_top.loc[listed].sum(axis=1).astype(int),
        "mean_rank": ranks.where(in_top).loc[listed].mean(axis=1),
        "in_top_of": in_top.loc[listed].apply(lambda row: ", ".join(row.index[row]), axis=1)})
    out = out.sort_values(["diseases", "mean_rank"], ascending=[False, True])
    out.insert(0, "priority", range(1, len(out) + 1))
    out.index.name = "gene"
    return out


# Figure 3 of the paper: PandaOmics put APLNR in the top 20 of all 4 diseases, IL23R of 3
PAPER_TOP20_COUNTS = {"APLNR": 4, "IL23R": 3}


def top_k_counts(rankings: dict[str, pd.DataFrame], genes: list[str], top_k: int = 20
                 ) -> pd.DataFrame:
    """For each named gene, the diseases whose own top ``top_k`` lists it and their number
    (the paper's per-disease view, not a shared cross-disease ranking)."""
    shared = shared_top_genes(rankings, top_k).reindex(genes)
    return pd.DataFrame({"diseases": shared["diseases"].fillna(0).astype(int),
                         "in_top_of": shared["in_top_of"].fillna("")}, index=pd.Index(
                             genes, name="gene"))


def annotate(targets: pd.DataFrame) -> pd.DataFrame:
    """Add the Open Genes aging mechanisms (hallmarks) and diseases of each gene (blank when
    Open Genes does not list it)."""
    out = targets.copy()
    for key, loader in (("open_genes_hallmarks", loaders.load_opengenes_hallmarks),
                        ("open_genes_diseases", loaders.load_opengenes_diseases)):
        terms = loader().set_index("gene")["terms"].map("; ".join)
        out[key] = terms.reindex(out.index).fillna("")
    return out


def planted_status(targets: pd.DataFrame, truth: pd.DataFrame, diseases: list[str]
                   ) -> pd.DataFrame:
    """The simulator's truth beside each prioritised gene: in how many diseases it was planted
    as a disease gene, whether it is a multi-disease target, and whether it is an age gene."""
    effects = truth[[f"effect_{d}" for d in diseases]].ne(0)
    out = targets.copy()
    out["planted_in_diseases"] = effects.sum(axis=1).reindex(out.index).astype(int)
    sources = truth[[f"source_{d}" for d in diseases]]
    multi = sources.eq("multi_disease_target").any(axis=1)
    out["planted_multi_disease_target"] = multi.reindex(out.index).fillna(False).astype(bool)
    out["planted_age_gene"] = truth["is_age_gene"].reindex(out.index).astype(bool)
    return out


def target_positions(targets: pd.DataFrame, genes: list[str]) -> pd.DataFrame:
    """Where the named genes came out: priority, number of diseases, mean rank (blank when a
    gene is in no disease's top list)."""
    return targets.reindex(genes)[["priority", "diseases", "mean_rank", "in_top_of"]]
