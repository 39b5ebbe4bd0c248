"""Age-prediction metrics used throughout the book (the papers' MAE, RMSE, R2, MdAE, r)."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    shared = group_metrics(y_true, y_pred)
    return {"n": len(y_true), **{k: shared[k] for k in ("MAE", "RMSE", "R2", "MdAE")},
            "pearson_r": float(stats.pearsonr(y_true, y_pred)[0])}


def group_metrics(y_true, y_pred) -> dict:
    """Supplementary Table 2's metrics for one group: MAE, R2, RMSE, MSE, MdAE, MAD (median
    absolute deviation of the signed errors, our reading of the paper's column) and n; R2 is
    NaN for a group of fewer than two samples."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    error = y_pred - y_true
    if len(error) == 0:
        raise ValueError("an empty group has no metrics")
    mse = float(np.mean(error ** 2))
    r2 = metrics.r2_score(y_true, y_pred) if len(error) > 1 else np.nan
    return {"MAE": float(np.mean(np.abs(error))), "R2": r2, "RMSE": float(np.sqrt(mse)),
            "MSE": mse, "MdAE": float(np.median(np.abs(error))),
            "MAD": float(stats.median_abs_deviation(error)), "test_samples": len(error)}


def modality_table(predictions: pd.DataFrame, truth: str = "age",
                   predicted: str = "predicted") -> pd.DataFrame:
    """Table 1's layout: MAE, RMSE, R2, MdAE and n (rows) for methylation, expression and all
    samples combined (columns), from a table with ``modality``, ``truth`` and ``predicted``."""
    groups = {m: predictions[predictions["modality"] == m]
              for m in ("methylation", "expression") if (predictions["modality"] == m).any()}
    groups["combined"] = predictions
    table = pd.DataFrame({name: group_metrics(g[truth], g[predicted])
                          for name, g in groups.items()})
    return table.loc[["MAE", "RMSE", "R2", "MdAE", "test_samples"]].rename(
        index={"test_samples": "n"})


def tissue_table(predictions: pd.DataFrame, truth: str = "age",
                 predicted: str = "predicted") -> pd.DataFrame:
    """Supplementary Table 2's layout: one row per tissue x modality, sorted by MAE."""
    rows = [{"tissue": tissue, "modality": modality, **group_metrics(g[truth], g[predicted])}
            for (tissue, modality), g in predictions.groupby(["tissue", "modality"],
                                                             observed=True)]
    return pd.DataFrame(rows).sort_values("MAE", ignore_index=True)


def mean_sd(tables: list[pd.DataFrame], digits: int = 3) -> pd.DataFrame:
    """Cell-wise mean and sample sd over folds (Supplementary Table 1), as ``mean +/- sd``."""
    stacked = np.stack([t.to_numpy(dtype=float) for t in tables])
    mean, sd = stacked.mean(axis=0), stacked.std(axis=0, ddof=1)
    text = np.vectorize(lambda m, s: f"{m:.{digits}f} ± {s:.{digits}f}")(mean, sd)
    return pd.DataFrame(text, index=tables[0].index, columns=tables[0].columns)
