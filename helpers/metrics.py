"""Age-prediction metrics used throughout the book (the papers' MAE, RMSE, R2, MdAE, r)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn import metrics


def age_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE, R2, median absolute error and Pearson r of predicted vs chronological age."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-d")
    if len(y_true) < 2:
        raise ValueError("at least two samples are needed")
    return {
        "n": len(y_true),
        "MAE": metrics.mean_absolute_error(y_true, y_pred),
        "RMSE": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "R2": metrics.r2_score(y_true, y_pred),
        "MdAE": metrics.median_absolute_error(y_true, y_pred),
        "pearson_r": float(stats.pearsonr(y_true, y_pred)[0]),
    }
