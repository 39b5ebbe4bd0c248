"""Age-prediction metrics used throughout the book (the papers' MAE, RMSE, R2, MdAE, Pearson's r
and Spearman's rho), per modality, per tissue and per cross-validation fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics

from helpers.common import wording


def age_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE, R2, median absolute error, Pearson's r and Spearman's rho of predicted vs
    chronological age (rho: does the clock order people by age, whatever its scale)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-d")
    if len(y_true) < 2:
        raise ValueError("at least two samples are needed")
    shared = group_metrics(y_true, y_pred)
    return {"n": len(y_true), **{k: shared[k] for k in ("MAE", "RMSE", "R2", "MdAE")},
            "pearson_r": _correlation(stats.pearsonr, y_true, y_pred),
            "spearman_rho": _correlation(stats.spearmanr, y_true, y_pred)}


def _correlation(test, y_true, y_pred) -> float:
    """A correlation, NaN (not an error) when either side is constant."""
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return float("nan")
    return float(test(y_true, y_pred)[0])


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
    """Table 1's layout: MAE, RMSE, R2, MdAE and n (rows) for each modality and all samples
    combined (columns), from a table with ``truth`` and ``predicted`` (and ``modality``: absent
    or a single level gives the combined column only)."""
    groups = {}
    if "modality" in predictions.columns and predictions["modality"].nunique() > 1:
        order = [m for m in ("methylation", "expression") if m in set(predictions["modality"])]
        order += sorted(set(predictions["modality"]) - set(order))
        groups = {m: predictions[predictions["modality"] == m] for m in order}
    groups["combined"] = predictions
    table = pd.DataFrame({name: group_metrics(g[truth], g[predicted])
                          for name, g in groups.items()})
    return table.loc[["MAE", "RMSE", "R2", "MdAE", "test_samples"]].rename(
        index={"test_samples": "n"})


MIN_STRATUM_SAMPLES = 5  # fewer test samples: a stratum's metrics are refused ("too few")


def tissue_table(predictions: pd.DataFrame, truth: str = "age",
                 predicted: str = "predicted", min_samples: int = MIN_STRATUM_SAMPLES
                 ) -> pd.DataFrame:
    """Supplementary Table 2's layout: one row per tissue x modality (those of the two columns
    that exist), sorted by MAE. A stratum of fewer than ``min_samples`` test samples keeps its
    count, its metrics are NaN and ``note`` says "too few": they would carry no meaning."""
    by = [c for c in ("tissue", "modality") if c in predictions.columns]
    if not by:
        raise ValueError("predictions have neither a 'tissue' nor a 'modality' column")
    rows = []
    for key, g in predictions.groupby(by, observed=True):
        scores = group_metrics(g[truth], g[predicted])
        if len(g) < min_samples:
            scores = {k: (v if k == "test_samples" else np.nan) for k, v in scores.items()}
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                     **scores, "note": "too few" if len(g) < min_samples else ""})
    return pd.DataFrame(rows).sort_values("MAE", ignore_index=True)


def fold_metrics(predictions: pd.DataFrame, truth: str = "age", predicted: str = "predicted",
                 by: tuple[str, ...] = ("model", "repeat", "fold")) -> pd.DataFrame:
    """One row per fold (and model, repeat: the ``by`` columns present) with MAE, RMSE, R2,
    MdAE, Pearson's r, Spearman's rho and n of its held-out samples."""
    by = [c for c in by if c in predictions.columns]
    rows = []
    for key, part in predictions.groupby(by, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        scores = age_metrics(part[truth], part[predicted]) if len(part) > 1 else {
            "n": len(part), **{k: v for k, v in group_metrics(part[truth], part[predicted])
                               .items() if k in ("MAE", "RMSE", "R2", "MdAE")}}
        rows.append({**dict(zip(by, key, strict=True)), **scores})
    return pd.DataFrame(rows)


def summarise_folds(per_fold: pd.DataFrame, by: tuple[str, ...] = ("model",),
                    metrics: tuple[str, ...] = ("MAE", "RMSE", "R2", "pearson_r",
                                                "spearman_rho")) -> pd.DataFrame:
    """Mean and sample sd over folds (and repeats) of each metric, per ``by`` group."""
    by = [c for c in by if c in per_fold.columns]
    present = [m for m in metrics if m in per_fold.columns]
    grouped = per_fold.groupby(by, observed=True, sort=False)[present] if by else per_fold[
        present]
    mean, sd = grouped.mean(), grouped.std(ddof=1)
    if not by:
        mean, sd = mean.to_frame().T, sd.to_frame().T
    out = pd.concat({"mean": mean, "sd": sd}, axis=1).swaplevel(axis=1)
    out = out[[(m, s) for m in present for s in ("mean", "sd")]]
    out.columns = [f"{m} {s}" for m, s in out.columns]
    out["folds"] = per_fold.groupby(by, observed=True, sort=False).size() if by else len(
        per_fold)
    return out


def mean_sd(tables: list[pd.DataFrame], digits: int = 3) -> pd.DataFrame:
    """Cell-wise mean and sample sd over folds (Supplementary Table 1), as ``mean +/- sd``."""
    stacked = np.stack([t.to_numpy(dtype=float) for t in tables])
    mean, sd = stacked.mean(axis=0), stacked.std(axis=0, ddof=1)
    text = np.vectorize(lambda m, s: wording.mean_sd(m, s, digits))(mean, sd)
    return pd.DataFrame(text, index=tables[0].index, columns=tables[0].columns)
