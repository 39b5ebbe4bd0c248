"""The Precious1GPT clock on plain data: one modality, one tissue, only an age column; repeated
and grouped cross-validation with out-of-fold predictions for every model kind; no held-out
sample reaches a fit; fold-specific tuning studies; small-cohort warnings; the searched space."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pandas as pd
import pytest

from helpers.common import splits
from helpers.precious1gpt import (
    clock_problem,
    crossval,
    importance,
    multimodal,
    transformer_clock,
    tuning,
)


def plain_expression(n_donors=20, per_donor=2, n_genes=30, seed=0):
    """A samples x genes table and a sample table with nothing but age and donor: the first
    five genes rise with age, every donor has its own offset on every gene."""
    rng = np.random.default_rng(seed)
    age = np.repeat(rng.uniform(20, 80, n_donors), per_donor)
    donor = np.repeat([f"D{i:02d}" for i in range(n_donors)], per_donor)
    offset = np.repeat(rng.normal(0, 0.5, (n_donors, n_genes)), per_donor, axis=0)
    values = rng.normal(6, 1, (len(age), n_genes)) + offset
    values[:, :5] += (age[:, None] - 50) / 10
    ids = [f"S{i:03d}" for i in range(len(age))]
    frame = pd.DataFrame(values, index=ids, columns=[f"G{i}" for i in range(n_genes)])
    return frame, pd.DataFrame({"age": age, "donor": donor}, index=ids)


@pytest.fixture(scope="module")
def data():
    values, obs = plain_expression()
    return multimodal.clock_data(expression_data=values, obs=obs, target="age", prepare=False)


def test_one_modality_one_tissue_needs_only_the_target_column(data, tmp_path):
    assert list(data.values) == ["expression"] and data.target == "age" and data.data == "real"
    assert set(data.obs["tissue"]) == {multimodal.ONE_LEVEL}
    problem = clock_problem.clock_problem(data, seed=0, max_epochs=2, patience=1,
                                          workdir=tmp_path, progress=False, group="donor",
                                          valid_size=0.25, valid_stratify=())
    assert not set(data.obs.loc[problem.train, "donor"]) & set(
        data.obs.loc[problem.test, "donor"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", transformer_clock.SmallCohortWarning)
        result = transformer_clock.fit("tabtransformer", {"batch_size": 8}, problem.rows("fit"),
                                       problem.rows("valid"), problem.space.genes,
                                       problem.training)
    predicted = transformer_clock.predict(result.model, problem.rows("test"))
    assert predicted.shape == (len(problem.test),) and np.isfinite(predicted).all()
    # SHAP on rows without the categorical columns: the model's single level is used
    rows = problem.rows("test").drop(columns=["tissue", "modality"])
    values = importance.explain(result.model, rows, problem.rows("fit"), problem.space.genes,
                                "years", n_background=10, nsamples=20)
    assert values.shape == (len(problem.test), len(problem.space.genes))


def test_a_missing_target_column_is_named():
    values, obs = plain_expression()
    with pytest.raises(ValueError, match="no target column 'age_reported'"):
        multimodal.clock_data(expression_data=values, obs=obs)
    with pytest.raises(ValueError, match="needs its sample table"):
        multimodal.clock_data(expression_data=values, target="age")


def test_out_of_fold_predictions_cover_every_sample_once_per_repeat_and_model(data):
    folds = splits.repeated_folds(data.obs, n_splits=4, n_repeats=2, by=(), group="donor",
                                  seed=0)
    cv = crossval.cross_validate(data, folds, models=("elasticnet", "mean_age"), seed=0,
                                 group="donor", valid_stratify=())
    counts = cv.predictions.groupby(["model", "repeat", "sample"]).size()
    assert (counts == 1).all() and len(counts) == 2 * 2 * len(data.obs)
    for (repeat, fold), train in cv.training_sets.items():
        held = folds.index[folds[repeat] == fold]
        assert not set(train) & set(held)
        assert not set(data.obs.loc[train, "donor"]) & set(data.obs.loc[held, "donor"])
    assert set(cv.per_fold["model"]) == {"ElasticNet per modality", "mean age"}
    assert len(cv.per_fold) == 2 * 2 * 4
    summary = cv.summary()
    enet = summary.loc[("ElasticNet per modality", "expression"), "MAE mean"]
    mean = summary.loc[("mean age", "expression"), "MAE mean"]
    assert enet < mean  # the planted age genes beat the mean
    oof = crossval.out_of_fold(cv.predictions, "elasticnet")
    assert len(oof) == len(data.obs) and (oof["repeats"] == 2).all()


def test_no_held_out_sample_reaches_a_fit(data):
    folds = splits.cv_folds(data.obs, n_splits=4, by=(), group="donor", seed=1)
    before = crossval.cross_validate(data, folds, models=("elasticnet", "mean_age"))
    held = folds.index[folds == 0]
    scrambled = multimodal.ClockData(
        {"expression": data.values["expression"].assign(
            **{g: data.values["expression"].loc[:, g].where(
                ~data.values["expression"].index.isin(held), 99.0) for g in ["G0", "G1"]})},
        data.obs.assign(age=data.obs["age"].where(~data.obs.index.isin(held), 500.0)),
        data.data, data.target)
    after = crossval.cross_validate(scrambled, folds, models=("elasticnet", "mean_age"))
    fold0 = before.predictions["fold"] == 0
    # the held-out samples' own predictions change only through their own values, never
    # through a model fitted on them: the mean-age prediction is untouched
    mean0 = fold0 & (before.predictions["model"] == "mean age")
    np.testing.assert_allclose(before.predictions.loc[mean0, "predicted"],
                               after.predictions.loc[mean0, "predicted"])
    # every other fold trains on the scrambled samples, and its predictions move
    others = ~fold0 & (before.predictions["model"] == "mean age")
    assert not np.allclose(before.predictions.loc[others, "predicted"],
                           after.predictions.loc[others, "predicted"])


def test_each_fold_tunes_in_a_study_of_its_own(data, tmp_path):
    storage = tuning.default_storage(tmp_path)
    folds = splits.cv_folds(data.obs, n_splits=3, by=(), group="donor", seed=0)
    crossval.cross_validate(data, folds, models=("elasticnet",), tune_trials=2,
                            storage=storage, group="donor", valid_stratify=())
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert len(names) == 3 and len(set(names)) == 3


def test_small_cohorts_are_warned_about():
    problems = transformer_clock.small_cohort_problems(n_train=30, n_valid=5, batch_size=96)
    assert len(problems) == 2 and "1 gradient step(s)" in problems[0]
    assert transformer_clock.small_cohort_problems(2000, 200, 96) == []


def test_search_space_tunes_learning_rate_and_depth():
    assert {"learning_rate", "depth"} <= set(tuning.SPACE)
    params = {"l1": 0.0, "l2": 0.0, "activation": "ReLU", "batch_size": 32, "optimizer": "Adam",
              "dropout": 0.1, "learning_rate": 1e-3, "depth": 2, "layer1": 64, "layer2": 256}
    hp = tuning.suggest_network(optuna.trial.FixedTrial(params))
    assert hp["layers"] == "64-256" and hp["learning_rate"] == 1e-3
    paper = tuning.network_hyperparameters(tuning.paper_trial())
    assert paper == transformer_clock.PAPER_HYPERPARAMETERS


def test_an_elasticnet_clock_exported_as_a_linear_clock_predicts_the_same(data):
    from helpers.common import clocks
    from helpers.precious1gpt import baselines

    problem = clock_problem.clock_problem(data, seed=0, valid_stratify=(), max_epochs=1)
    model = baselines.fit_elasticnet_cv(problem.rows("train"), problem.space, "expression")
    clock = baselines.as_linear_clock(model, problem.space, "expression", "exported")
    raw = data.values["expression"].loc[problem.test]
    direct = baselines.predict_elasticnet(model, problem.rows("test"))
    np.testing.assert_allclose(clocks.predict_age(clock, raw), direct, rtol=1e-6)
    assert clock.feature == "gene" and 0 < len(clock.weights) <= raw.shape[1]
