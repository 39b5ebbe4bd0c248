"""Splits a user configures (stratified by any column, grouped by donor, repeated) and the
metrics that summarise them (Spearman's rho, per fold, mean and sd over folds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.common import metrics, splits


def donors_table(n_donors=12, per_donor=3, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ages = rng.uniform(20, 80, n_donors)
    rows = [{"donor": f"D{d}", "age": ages[d], "tissue": ["Skin", "Bladder"][d % 2]}
            for d in range(n_donors) for _ in range(per_donor)]
    return pd.DataFrame(rows, index=[f"s{i}" for i in range(n_donors * per_donor)])


def test_grouped_folds_keep_each_donor_on_one_side_in_every_repeat():
    obs = donors_table()
    folds = splits.repeated_folds(obs, n_splits=4, n_repeats=3, by=("tissue",), group="donor",
                                  seed=1)
    assert list(folds.columns) == [0, 1, 2]
    for repeat in folds.columns:
        assert (folds.groupby(obs["donor"])[repeat].nunique() == 1).all()
        assert set(folds[repeat]) == {0, 1, 2, 3}
    assert not folds[0].equals(folds[1])  # a new shuffle per repeat


def test_every_sample_is_held_out_exactly_once_per_repeat():
    obs = donors_table()
    folds = splits.repeated_folds(obs, n_splits=3, n_repeats=2, by=(), seed=0)
    for repeat in folds.columns:
        held = np.concatenate([splits.held_out_ids(folds, f, repeat) for f in range(3)])
        assert sorted(held) == sorted(obs.index)


def test_folds_stratified_by_an_age_group_span_young_and_old():
    obs = donors_table(n_donors=30, per_donor=1)
    obs["age_group"] = splits.age_strata(obs["age"], n_groups=3)
    assert obs["age_group"].value_counts().tolist() == [10, 10, 10]
    folds = splits.cv_folds(obs, n_splits=5, by=("age_group",), seed=2)
    assert (pd.crosstab(obs["age_group"], folds) == 2).all().all()


def test_absent_tissue_and_modality_are_one_level_but_a_typo_is_an_error():
    obs = donors_table().drop(columns="tissue")
    folds = splits.cv_folds(obs, n_splits=3)  # the paper's by=(tissue, modality): both absent
    assert sorted(folds.unique()) == [0, 1, 2]
    train, test = splits.holdout_split(obs, 0.25, seed=0)
    assert len(test) == 9 and not set(train) & set(test)
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['tisue'\]"):
        splits.cv_folds(obs, by=("tisue",))
    with pytest.raises(ValueError, match="lacks the group field 'donr'"):
        splits.cv_folds(obs, group="donr")


def test_grouped_holdout_never_splits_a_donor():
    obs = donors_table(n_donors=20)
    train, test = splits.holdout_split(obs, 0.2, group="donor", seed=4)
    assert not set(obs.loc[train, "donor"]) & set(obs.loc[test, "donor"])
    assert 0.1 < len(test) / len(obs) < 0.3


def test_too_few_groups_for_the_folds_is_an_error():
    with pytest.raises(ValueError, match="needs at least 5 groups; there are 4"):
        splits.repeated_folds(donors_table(n_donors=4), n_splits=5, group="donor")


def test_age_metrics_report_spearman_rho():
    y = np.array([20.0, 30, 40, 50, 60])
    m = metrics.age_metrics(y, np.array([25.0, 26, 45, 58, 90]))  # monotone, not linear
    assert m["spearman_rho"] == pytest.approx(1.0)
    assert m["pearson_r"] < 1
    assert np.isnan(metrics.age_metrics(y, np.full(5, 40.0))["spearman_rho"])


def test_fold_metrics_and_their_summary():
    predictions = pd.DataFrame({
        "model": ["a"] * 8, "repeat": [0] * 4 + [1] * 4, "fold": [0, 0, 1, 1] * 2,
        "age": [20.0, 60, 30, 50] * 2, "predicted": [22.0, 58, 33, 47, 20, 60, 30, 54]})
    per_fold = metrics.fold_metrics(predictions)
    assert per_fold[["repeat", "fold"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert per_fold["MAE"].tolist() == [2.0, 3.0, 0.0, 2.0]
    summary = metrics.summarise_folds(per_fold)
    assert summary.loc["a", "MAE mean"] == pytest.approx(1.75)
    assert summary.loc["a", "MAE sd"] == pytest.approx(np.std([2, 3, 0, 2], ddof=1))
    assert summary.loc["a", "folds"] == 4


def test_modality_table_without_a_modality_column_is_the_combined_column():
    frame = pd.DataFrame({"age": [20.0, 40, 60], "predicted": [25.0, 40, 55]})
    table = metrics.modality_table(frame)
    assert list(table.columns) == ["combined"]
    assert table.loc["MAE", "combined"] == pytest.approx(10 / 3)
    assert metrics.tissue_table(frame.assign(tissue=["Skin", "Skin", "Lung"]), min_samples=1)[
        "tissue"].tolist() == ["Skin", "Lung"]


def test_a_stratum_below_five_samples_is_refused_not_reported():
    frame = pd.DataFrame({"age": np.arange(8.0), "predicted": np.arange(8.0) + 1,
                          "tissue": ["Skin"] * 5 + ["Lung"] * 3})
    table = metrics.tissue_table(frame).set_index("tissue")
    assert table.loc["Skin", "MAE"] == pytest.approx(1.0) and table.loc["Skin", "note"] == ""
    assert np.isnan(table.loc["Lung", "MAE"]) and table.loc["Lung", "note"] == "too few"
    assert table.loc["Lung", "test_samples"] == 3
