"""Honest baselines for the transformer clock, on the same splits and gene space: a specialised
ElasticNet clock per modality (the single-modality clocks the paper compares against, in the
spirit of Horvath's: given penalties, or the penalty chosen by an inner cross-validation on the
training samples alone, as glmnet's cv.glmnet chose Horvath's) and the mean-age predictor that
any clock must beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet, ElasticNetCV

from helpers.common.clocks import LinearClock, linear_clock
from helpers.precious1gpt.multimodal import FeatureSpace
from helpers.precious1gpt.transformer_clock import TARGET


def modality_rows(table: pd.DataFrame, modality: str) -> pd.DataFrame:
    """The rows of one modality."""
    return table[table["modality"] == modality]


def fit_elasticnet(train: pd.DataFrame, space: FeatureSpace, modality: str, alpha: float,
                   l1_ratio: float, seed: int = 0) -> ElasticNet:
    """An ElasticNet age clock on one modality's measured genes (z-scored as in the space)."""
    rows = modality_rows(train, modality)
    if rows.empty:
        raise ValueError(f"no {modality} samples to train an ElasticNet clock on")
    genes = list(space.measured(modality))
    model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, max_iter=5000, tol=1e-3,
                       selection="random", random_state=seed)
    model.fit(rows[genes].to_numpy(), rows[TARGET].to_numpy())
    model.genes_ = genes
    return model


def fit_elasticnet_cv(train: pd.DataFrame, space: FeatureSpace, modality: str,
                      l1_ratio: float = 0.5, inner_folds: int = 5, seed: int = 0
                      ) -> ElasticNetCV:
    """An ElasticNet clock whose penalty (alpha) is chosen by ``inner_folds``-fold
    cross-validation inside ``train`` (Horvath's recipe: l1_ratio 0.5, penalty by CV); no
    held-out sample takes part in the choice."""
    rows = modality_rows(train, modality)
    if len(rows) < 2 * inner_folds:
        inner_folds = max(2, len(rows) // 2)
    if len(rows) < 4:
        raise ValueError(f"{len(rows)} {modality} training samples: too few for an ElasticNet "
                         "with an inner cross-validation")
    genes = list(space.measured(modality))
    model = ElasticNetCV(l1_ratio=l1_ratio, cv=inner_folds, max_iter=5000, tol=1e-3,
                         selection="random", random_state=seed, alphas=50)
    model.fit(rows[genes].to_numpy(), rows[TARGET].to_numpy())
    model.genes_ = genes
    return model


def predict_elasticnet(model: ElasticNet, table: pd.DataFrame) -> np.ndarray:
    """Predicted ages for rows of the modality the clock was trained on."""
    return model.predict(table[model.genes_].to_numpy())


def mean_age(train: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """The mean-age predictor: each sample gets its modality's mean training age (the overall
    mean when the tables have no ``modality`` column)."""
    if "modality" not in train.columns or "modality" not in table.columns:
        return np.full(len(table), float(train[TARGET].mean()))
    means = train.groupby("modality", observed=True)[TARGET].mean()
    missing = sorted(set(table["modality"]) - set(means.index))
    if missing:
        raise ValueError(f"no training samples of modality {missing}")
    return table["modality"].map(means).to_numpy(dtype=float)


def as_linear_clock(model, space: FeatureSpace, modality: str, name: str,
                    unit: str = "log") -> LinearClock:
    """A fitted ElasticNet clock as a published-style linear clock on the modality's own scale
    (the z-scaling folded into the weights: w / sd per gene, intercept - sum(w * mean / sd)),
    keeping only genes with a non-zero weight; apply it with
    :func:`helpers.common.clocks.apply_clock` like any published clock."""
    genes = list(model.genes_)
    coef = pd.Series(model.coef_, index=genes)
    coef = coef[coef != 0]
    if coef.empty:
        raise ValueError(f"{name}: the fitted penalty kept no gene; the model is its intercept "
                         f"({float(model.intercept_):.1f} years for everyone), not a clock")
    mean = space.scale.loc[coef.index, f"{modality}_mean"]
    sd = space.scale.loc[coef.index, f"{modality}_sd"]
    weights = coef / sd
    intercept = float(model.intercept_ - (coef * mean / sd).sum())
    feature = "CpG" if modality == "methylation" and unit == "beta" else "gene"
    return linear_clock(name, weights, intercept, feature=feature, unit=unit,
                        provenance={"fitted": "ElasticNet", "modality": modality})
