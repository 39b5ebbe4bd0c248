"""Per-hallmark state classifiers (HallmarkAge Appendix D.5-D.7): gene-PCA features, logistic
regression and gradient boosting trained on extreme-score cells of training donors, evaluated
on held-out donors, probabilities stored per cell and averaged per donor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits

from helpers.hallmarkage.hallmark_states import extreme_label

MODELS = ("logistic", "boosting")


def donor_split(obs: pd.DataFrame, test_fraction: float = 0.3, seed: int = 0,
                donor: str = "donor", stratum: str = "age_group") -> tuple[list, list]:
    """Train and test donors: a seeded draw of ``test_fraction`` of the donors of every stratum
    (young / old), so both sides span the age range; no donor is on both sides."""
    rng = np.random.default_rng(seed)
    donors = obs[[donor, stratum]].drop_duplicates().sort_values(donor)
    test = []
    for _, group in donors.groupby(stratum, observed=True):
        n_test = max(1, int(round(test_fraction * len(group))))
        test += rng.choice(group[donor].astype(str).to_numpy(), n_test, replace=False).tolist()
    train = sorted(set(donors[donor].astype(str)) - set(test))
    return train, sorted(test)


def gene_pca_features(adata, train: np.ndarray, n_hvg: int = 2000, n_pcs: int = 30,
                      seed: int = 0, exclude=()) -> tuple[np.ndarray, pd.Index]:
    """Gene-PCA features: HVGs, z-scaling and PCA all fitted on training cells only, then
    applied to every cell; genes in ``exclude`` (e.g. a hallmark's own genes, so that its
    state is not predicted from the very genes that define it) are left out. Returns the
    features and the HVGs."""
    train = np.asarray(train, bool)
    if len(exclude):
        adata = adata[:, ~adata.var_names.isin(list(exclude))]
    fit = adata[train]
    hvg = sc.pp.highly_variable_genes(fit, n_top_genes=min(n_hvg, adata.n_vars),
                                      flavor="seurat", inplace=False)
    genes = adata.var_names[hvg["highly_variable"].to_numpy()]
    X = adata[:, genes].X
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    mean, sd = X[train].mean(axis=0), X[train].std(axis=0)
    scaled = np.clip((X - mean) / np.where(sd > 0, sd, 1.0), -10, 10)
    pca = PCA(n_components=min(n_pcs, len(genes) - 1), random_state=seed).fit(scaled[train])
    return pca.transform(scaled).astype(np.float32), genes


def make_model(kind: str, seed: int, boosting_iterations: int = 100):
    """A fresh classifier of one of :data:`MODELS`."""
    if kind == "logistic":
        return LogisticRegression(max_iter=1000)
    if kind == "boosting":
        return HistGradientBoostingClassifier(max_iter=boosting_iterations,
                                              early_stopping=False, random_state=seed)
    raise ValueError(f"unknown model {kind!r}; choose from {MODELS}")


def fit_hallmark(features: np.ndarray, scores: np.ndarray, train: np.ndarray, test: np.ndarray,
                 kind: str, low: float = 0.2, high: float = 0.8, seed: int = 0,
                 boosting_iterations: int = 100) -> tuple[dict, np.ndarray]:
    """One hallmark: extreme labels with thresholds from training cells, fit on training
    donors' extreme cells, probabilities for every cell, AUROC / AP on test donors' extreme
    cells."""
    thresholds = tuple(np.quantile(scores[train], [low, high]))
    label = extreme_label(scores, thresholds=thresholds)
    fit_rows = train & ~np.isnan(label)
    with threadpool_limits(1):  # OpenMP threads of boosting stall on a busy 2-core machine
        model = make_model(kind, seed, boosting_iterations)
        model.fit(features[fit_rows], label[fit_rows].astype(int))
        probability = model.predict_proba(features)[:, 1]
    eval_rows = test & ~np.isnan(label)
    y = label[eval_rows].astype(int)
    both = len(np.unique(y)) == 2
    metrics = {"model": kind, "train_cells": int(fit_rows.sum()),
               "test_cells": int(eval_rows.sum()),
               "auroc": roc_auc_score(y, probability[eval_rows]) if both else np.nan,
               "average_precision": (average_precision_score(y, probability[eval_rows])
                                     if both else np.nan)}
    return metrics, probability


def train_classifiers(features: np.ndarray, scores: pd.DataFrame, train: np.ndarray,
                      models=MODELS, prefix: str = "score", low: float = 0.2, high: float = 0.8,
                      seed: int = 0, boosting_iterations: int = 100
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every hallmark x model: metrics on held-out donors and per-cell probabilities
    (``prob_<model>_<name>``)."""
    train = np.asarray(train, bool)
    test = ~train
    rows, probabilities = [], {}
    for column in scores.columns:
        name = column.removeprefix(f"{prefix}_")
        for kind in models:
            metrics, probability = fit_hallmark(features, scores[column].to_numpy(), train,
                                                test, kind, low, high, seed,
                                                boosting_iterations)
            rows.append({"hallmark": name, **metrics})
            probabilities[f"prob_{kind}_{name}"] = probability
    return pd.DataFrame(rows), pd.DataFrame(probabilities, index=scores.index)


def without_own_genes(adata, scores: pd.DataFrame, gene_sets: dict[str, list[str]],
                      train: np.ndarray, n_hvg: int = 2000, n_pcs: int = 30, seed: int = 0,
                      prefix: str = "score") -> pd.DataFrame:
    """Logistic state classifiers whose gene-PCA features leave out the hallmark's own genes
    (a control for a score being rebuilt from the genes that define it): one metrics row per
    hallmark."""
    rows = []
    for name, genes in gene_sets.items():
        features, _ = gene_pca_features(adata, train, n_hvg, n_pcs, seed, exclude=genes)
        metrics, _ = train_classifiers(features, scores[[f"{prefix}_{name}"]], train,
                                       models=("logistic",), prefix=prefix, seed=seed)
        rows.append(metrics)
    return pd.concat(rows, ignore_index=True)


def donor_probabilities(probabilities: pd.DataFrame, donors: pd.Series) -> pd.DataFrame:
    """Sample-level hallmark probabilities (D.7): the mean over each donor's cells."""
    return probabilities.groupby(np.asarray(donors), observed=True).mean()


def planted_trends(probabilities: pd.DataFrame, obs: pd.DataFrame, truth: pd.DataFrame,
                   model: str = "logistic") -> pd.DataFrame:
    """For each hallmark planted as age-driven: Spearman r between age and the donors' mean
    probability (D.7) within the planted cell type."""
    ages = obs.drop_duplicates("donor").set_index("donor")["age"]
    rows = []
    for r in truth[truth["status"].isin(["up", "down"])].itertuples():
        column = f"prob_{model}_{r.framework}__{r.hallmark}"
        inside = (obs["cell_type"] == r.cell_type).to_numpy()
        donor_means = donor_probabilities(probabilities.loc[inside, [column]],
                                          obs.loc[inside, "donor"])[column]
        rows.append({"hallmark": f"{r.framework}__{r.hallmark}", "cell type": r.cell_type,
                     "planted": r.status,
                     "Spearman r (donor mean probability, age)": donor_means.corr(
                         ages.reindex(donor_means.index).astype(float), method="spearman")})
    return pd.DataFrame(rows)
