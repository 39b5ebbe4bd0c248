"""Hallmark space (HallmarkAge Figures 1, 3, S2-S9 and Appendix D.10): cells as hallmark-score
vectors, their UMAP and Leiden clusters, the hallmark-by-cluster profile and each cluster's
marker genes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc


def hallmark_adata(scores: pd.DataFrame, obs: pd.DataFrame, prefix: str = "score"
                   ) -> ad.AnnData:
    """An AnnData whose features are the z-scored hallmark scores (cells x hallmarks)."""
    values = scores.to_numpy(float)
    sd = values.std(axis=0)
    z = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    names = [c.removeprefix(f"{prefix}_") for c in scores.columns]
    return ad.AnnData(X=z.astype(np.float32), obs=obs.copy(),
                      var=pd.DataFrame(index=pd.Index(names, name="hallmark")))


def embed_and_cluster(space: ad.AnnData, n_neighbors: int = 15, resolution: float = 0.5,
                      seed: int = 0) -> ad.AnnData:
    """kNN graph on the hallmark vectors, UMAP and Leiden clusters (igraph backend), seeded.
    The kNN search is scikit-learn's exact one: scanpy 1.11's approximate (pynndescent) path,
    used above 4,096 cells, fails with scipy 1.17's sparse arrays ('csr_array' has no
    getnnz)."""
    sc.pp.neighbors(space, n_neighbors=n_neighbors, use_rep="X", transformer="sklearn",
                    random_state=seed)
    sc.tl.umap(space, random_state=seed)
    sc.tl.leiden(space, resolution=resolution, random_state=seed, flavor="igraph",
                 n_iterations=2, directed=False, key_added="hallmark_cluster")
    return space


def cluster_profile(space: ad.AnnData, key: str = "hallmark_cluster") -> pd.DataFrame:
    """Mean z-scored hallmark score per cluster (clusters x hallmarks): Figure 3's heatmap."""
    frame = pd.DataFrame(space.X, index=space.obs_names, columns=space.var_names)
    return frame.groupby(space.obs[key].to_numpy()).mean()


def top_hallmarks(profile: pd.DataFrame, n: int = 3) -> pd.Series:
    """The ``n`` hallmarks with the highest mean z-score in each cluster."""
    return profile.apply(lambda row: ", ".join(row.nlargest(n).index), axis=1)


def cluster_markers(expression: ad.AnnData, clusters, n_genes: int = 8,
                    key: str = "hallmark_cluster", method: str = "wilcoxon") -> pd.DataFrame:
    """Marker genes of each cluster with ``rank_genes_groups`` (log data in X)."""
    data = ad.AnnData(X=expression.X, obs=pd.DataFrame({key: pd.Categorical(
        np.asarray(clusters).astype(str))}, index=expression.obs_names),
        var=pd.DataFrame(index=expression.var_names))
    sc.tl.rank_genes_groups(data, key, method=method, n_genes=n_genes)
    names = pd.DataFrame(data.uns["rank_genes_groups"]["names"])
    return pd.DataFrame({"marker genes": names.apply(lambda col: ", ".join(col), axis=0)})


def composition(obs: pd.DataFrame, key: str, by: str) -> pd.DataFrame:
    """Share of each ``by`` level within every cluster (rows sum to 1)."""
    return pd.crosstab(obs[key], obs[by], normalize="index")


def group_activity(scores: pd.DataFrame, groups, prefix: str = "score") -> pd.DataFrame:
    """Mean z-scored hallmark score per group (groups x hallmarks), e.g. per PBMC cell type."""
    z = (scores - scores.mean()) / scores.std(ddof=0).replace(0, 1)
    z.columns = [c.removeprefix(f"{prefix}_") for c in z.columns]
    return z.groupby(np.asarray(groups)).mean()


def cluster_summary(space: ad.AnnData, profile: pd.DataFrame, markers: pd.DataFrame,
                    key: str = "hallmark_cluster") -> pd.DataFrame:
    """Per cluster: cells, main cell type and its share, mean age, top hallmarks and marker
    genes."""
    shares = composition(space.obs, key, "cell_type")
    table = pd.DataFrame({
        "cells": space.obs[key].value_counts().sort_index(),
        "main cell type": shares.idxmax(axis=1),
        "its share": shares.max(axis=1).round(2),
        "mean age": space.obs.groupby(key, observed=True)["age"].mean().round(1),
        "top hallmarks": top_hallmarks(profile),
    })
    return table.join(markers.set_axis(markers.index.astype(str)).rename_axis(key), how="left")


def marker_hits(summary: pd.DataFrame, type_markers: dict[str, list[str]]) -> pd.Series:
    """Per cluster, how many of its marker genes are the known markers of its main cell type
    (a cluster's markers are cell-type markers only where this is above 0)."""
    return pd.Series({cluster: len(set(str(row["marker genes"]).split(", "))
                                   & set(type_markers.get(row["main cell type"], [])))
                      for cluster, row in summary.iterrows()}, name="known markers")
