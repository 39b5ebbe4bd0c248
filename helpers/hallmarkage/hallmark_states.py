"""Hallmark ON/OFF states (HallmarkAge Appendix D.4): top-20% labels, extreme-only labels with
a training mask, and the optional two-component Gaussian-mixture labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.mixture import GaussianMixture


def quantile_label(scores, q: float = 0.8) -> np.ndarray:
    """1 where the score is above its ``q`` quantile (the paper's y = 1(S > q0.8)), else 0."""
    scores = np.asarray(scores, float)
    return (scores > np.quantile(scores, q)).astype(np.int8)


def extreme_label(scores, low: float = 0.2, high: float = 0.8,
                  thresholds: tuple[float, float] | None = None) -> np.ndarray:
    """1 above the ``high`` quantile, 0 below the ``low`` quantile, NaN in between. With
    ``thresholds`` (q_low, q_high) given, e.g. from training cells, those values are used."""
    scores = np.asarray(scores, float)
    q_low, q_high = (np.quantile(scores, [low, high]) if thresholds is None else thresholds)
    if q_low > q_high:
        raise ValueError("the low threshold is above the high one")
    label = np.full(len(scores), np.nan)
    label[scores > q_high] = 1.0
    label[scores < q_low] = 0.0
    return label


def gmm_label(scores, seed: int = 0, min_weight: float = 0.05) -> np.ndarray | None:
    """Two-component Gaussian mixture on the scores: 1 for the component with the higher mean.
    None when the fit fails (no convergence, or a component under ``min_weight`` of cells)."""
    x = np.asarray(scores, float).reshape(-1, 1)
    model = GaussianMixture(2, random_state=seed).fit(x)
    if not model.converged_ or model.weights_.min() < min_weight:
        return None
    high = int(np.argmax(model.means_.ravel()))
    return (model.predict(x) == high).astype(np.int8)


def binarise(scores: pd.DataFrame, prefix: str = "score", low: float = 0.2, high: float = 0.8,
             gmm: bool = True, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label columns for every ``<prefix>_<name>`` score: ``label_q80_<name>``,
    ``label_extreme_<name>`` with ``mask_extreme_<name>`` and, where the fit succeeds,
    ``label_gmm_<name>``. Returns the labels and a per-hallmark summary."""
    labels, rows = {}, []
    tag = f"q{round(high * 100)}"
    for column in scores.columns:
        name = column.removeprefix(f"{prefix}_")
        values = scores[column].to_numpy()
        labels[f"label_{tag}_{name}"] = quantile_label(values, high)
        extreme = extreme_label(values, low, high)
        labels[f"label_extreme_{name}"] = extreme
        labels[f"mask_extreme_{name}"] = ~np.isnan(extreme)
        mixture = gmm_label(values, seed) if gmm else None
        if mixture is not None:
            labels[f"label_gmm_{name}"] = mixture
        rows.append({"hallmark": name, "on_share_q80": labels[f"label_{tag}_{name}"].mean(),
                     "extreme_cells": int((~np.isnan(extreme)).sum()),
                     "gmm_fit": mixture is not None,
                     "gmm_on_share": np.nan if mixture is None else mixture.mean()})
    return pd.DataFrame(labels, index=scores.index), pd.DataFrame(rows)
