"""HallmarkAge's ridge clocks (Section 4, Appendix K) on one profile per donor, as real donor
pseudobulks come: repeated donor-level cross-validation with out-of-fold predictions, the
hallmark coefficients of every fold's clocks, donor-bootstrap intervals and paired
differences, and leave-one-dataset-out evaluation in which every held-out dataset brings new
people. One profile per donor needs no metacells: each donor is one sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.common.metrics import age_metrics
from helpers.hallmarkage import hallmark_clocks, pseudobulk
from helpers.hallmarkage.hallmark_clocks import CLOCKS, LABELS, Settings, bootstrap_ci, predict

MEAN_AGE = "mean_age"
ALL_LABELS = {**LABELS, MEAN_AGE: "Mean age (baseline)"}


@dataclass
class CrossValidated:
    """Out-of-fold predictions (one row per donor, clock and repeat), the ridge penalty and
    the hallmark coefficients (per SD of score) of every fold's clocks."""

    predictions: pd.DataFrame
    penalties: pd.DataFrame
    coefficients: pd.DataFrame


def _hallmark_coefficients(clock, names) -> pd.Series:
    return pd.Series(clock.ridge.coef_[clock.n_pcs:], index=list(names))


def repeated_cross_validation(profiles: pseudobulk.Profiles, gene_sets: dict[str, list[str]],
                              folds: pd.DataFrame, settings: Settings, clocks=CLOCKS
                              ) -> CrossValidated:
    """Every repeat (a column of ``folds``, e.g. :func:`helpers.common.splits.repeated_folds`
    grouped by donor) and fold: clocks, hallmark control genes, HVGs, scaling and PCA fitted
    without the fold's donors predict them; the mean age of the other folds is the baseline."""
    predictions, penalties, coefficients = [], [], []
    for repeat in folds.columns:
        fits = hallmark_clocks.profile_fold_fits(profiles, gene_sets, folds[repeat], settings,
                                                 clocks)
        for fold, test_rows, fitted, scored in fits:
            where = {"repeat": int(repeat), "fold": fold}
            held_out = _sample_columns(profiles.obs[test_rows])
            train_mean = profiles.obs.loc[~test_rows, "age"].mean()
            predictions.append(held_out.assign(clock=MEAN_AGE, predicted=train_mean, **where))
            for kind, clock in fitted.items():
                predictions.append(held_out.assign(
                    clock=kind, predicted=predict(clock, scored, test_rows), **where))
                penalties.append({**where, "clock": kind, "alpha": clock.ridge.alpha})
                if clock.hallmark_scaler is not None:
                    coefficients.append(pd.DataFrame({
                        "hallmark": list(gene_sets), "clock": kind, **where,
                        "coefficient": clock.ridge.coef_[clock.n_pcs:]}))
    return CrossValidated(pd.concat(predictions, ignore_index=True), pd.DataFrame(penalties),
                          pd.concat(coefficients, ignore_index=True))


def _sample_columns(obs: pd.DataFrame) -> pd.DataFrame:
    return obs[[c for c in ("donor", "dataset", "age") if c in obs.columns]].copy()


def performance(predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> pd.DataFrame:
    """Per clock: MAE of each repeat (mean and SD over repeats), and over all repeats the MAE,
    R2 and Pearson r with percentile intervals from resampling donors (all of a donor's
    repeats together)."""
    rows = []
    for kind, part in predictions.groupby("clock", sort=False):
        per_repeat = (part["predicted"] - part["age"]).abs().groupby(part["repeat"]).mean()
        point = age_metrics(part["age"], part["predicted"])
        ci = bootstrap_ci(part, n_boot, seed, level)
        rows.append({"clock": kind, "Model": ALL_LABELS[kind], "MAE": point["MAE"],
                     "MAE SD over repeats": per_repeat.std(ddof=1) if len(per_repeat) > 1
                     else np.nan,
                     "MAE low": ci["MAE"]["low"], "MAE high": ci["MAE"]["high"],
                     "R2": point["R2"], "R2 low": ci["R2"]["low"], "R2 high": ci["R2"]["high"],
                     "pearson_r": point["pearson_r"], "donors": part["donor"].nunique(),
                     "repeats": per_repeat.size})
    return pd.DataFrame(rows).set_index("clock")


def mean_over_repeats(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per clock and donor: the age and the mean of the donor's out-of-fold
    predictions over repeats."""
    return (predictions.groupby(["clock", "donor"])[["age", "predicted"]].mean()
            .reset_index())


def mae_difference(predictions: pd.DataFrame, first: str, second: str, n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> dict:
    """MAE of ``first`` minus MAE of ``second`` on the same donors and repeats, with a paired
    percentile interval from resampling donors (negative: ``first`` is more accurate)."""
    errors = (predictions.assign(error=(predictions["predicted"] - predictions["age"]).abs())
              .pivot_table(index=["donor", "repeat"], columns="clock", values="error"))
    diff = (errors[first] - errors[second]).groupby(level="donor").agg(["sum", "count"])
    draws = hallmark_clocks.donor_resamples(len(diff), n_boot, seed)
    boot = (draws @ diff["sum"].to_numpy()) / (draws @ diff["count"].to_numpy())
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return {"difference": float(diff["sum"].sum() / diff["count"].sum()), "low": float(low),
            "high": float(high)}


def leave_one_dataset_out(profiles: pseudobulk.Profiles, gene_sets: dict[str, list[str]],
                          settings: Settings, column: str = "dataset", clocks=CLOCKS
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables S4-S5 on donors: for each dataset, the clocks (and the mean-age baseline) fitted
    on every other dataset's donors predict its donors, who are new people to them. Returns
    the metrics per held-out dataset and clock, and the predictions."""
    if column not in profiles.obs:
        raise ValueError(f"the sample table has no field {column!r}")
    values = profiles.obs[column].astype(str)
    if values.nunique() < 2:
        raise ValueError(f"leave-one-{column}-out needs at least two values of {column!r}")
    rows, predictions = [], []
    for value in sorted(values.unique()):
        test_rows = (values == value).to_numpy()
        fitted, scored = hallmark_clocks.fit_profile_clocks(profiles, gene_sets, ~test_rows,
                                                            settings, clocks)
        train_ages = profiles.obs.loc[~test_rows, "age"]
        held_out = _sample_columns(profiles.obs[test_rows])
        predicted = {MEAN_AGE: np.full(int(test_rows.sum()), train_ages.mean())}
        predicted.update({kind: predict(clock, scored, test_rows)
                          for kind, clock in fitted.items()})
        for kind, p in predicted.items():
            m = age_metrics(held_out["age"], p)
            rows.append({f"held-out {column}": value, "clock": kind, "Model": ALL_LABELS[kind],
                         **{k: m[k] for k in ("MAE", "RMSE", "R2", "pearson_r")},
                         "n_train": int((~test_rows).sum()), "n_test": int(test_rows.sum()),
                         "train ages": f"{train_ages.min():g}-{train_ages.max():g}",
                         "test ages": f"{held_out['age'].min():g}-{held_out['age'].max():g}"})
            predictions.append(held_out.assign(clock=kind, predicted=p))
    return pd.DataFrame(rows), pd.concat(predictions, ignore_index=True)


def against_cross_validation(held_out: pd.DataFrame, predictions: pd.DataFrame,
                             column: str = "dataset") -> pd.DataFrame:
    """:func:`leave_one_dataset_out`'s table with, per held-out value and clock, the same
    donors' MAE in the repeated cross-validation (``MAE in CV``, where people of their own
    dataset were in training) and the change out of distribution."""
    in_cv = (predictions.assign(error=(predictions["predicted"] - predictions["age"]).abs())
             .groupby([column, "clock"])["error"].mean().rename("MAE in CV"))
    table = held_out.join(in_cv, on=[f"held-out {column}", "clock"])
    return table.assign(change=table["MAE"] - table["MAE in CV"])


def coefficient_intervals(coefficients: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per clock and hallmark, over every fold of every repeat: the median coefficient, the
    central ``level`` range and the share of fits in which it is positive."""
    tail = (1 - level) / 2
    grouped = coefficients.groupby(["clock", "hallmark"], sort=False)["coefficient"]
    return pd.DataFrame({"median": grouped.median(), "low": grouped.quantile(tail),
                         "high": grouped.quantile(1 - tail),
                         "share positive": grouped.apply(lambda c: (c > 0).mean()),
                         "fits": grouped.size()})
