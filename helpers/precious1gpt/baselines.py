"""Honest baselines for the transformer clock, on the same splits and gene space: a specialised
ElasticNet clock per modality (the single-modality clocks the paper compares against, in the
spirit of Horvath's) and the mean-age predictor that any clock must beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet

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


def predict_elasticnet(model: ElasticNet, table: pd.DataFrame) -> np.ndarray:
    """Predicted ages for rows of the modality the clock was trained on."""
    return model.predict(table[model.genes_].to_numpy())


def mean_age(train: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """The mean-age predictor: each sample gets its modality's mean training age."""
    means = train.groupby("modality", observed=True)[TARGET].mean()
    missing = sorted(set(table["modality"]) - set(means.index))
    if missing:
        raise ValueError(f"no training samples of modality {missing}")
    return table["modality"].map(means).to_numpy(dtype=float)
