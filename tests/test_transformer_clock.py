"""The Precious1GPT clock: the shared gene space, metrics against scikit-learn, a stored Optuna
study that resumes, seed-determinism, saving and reloading, and the baselines."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from helpers.common import metrics, splits
from helpers.common.clocks import MissingFeaturesError
from helpers.precious1gpt import baselines, clock_problem, multimodal, transformer_clock, tuning


def tiny_data(seed: int = 0, n: int = 160) -> multimodal.ClockData:
    """Two small cohorts with a linear age signal on the first genes; 20 genes are measured
    by methylation only and 10 by expression only."""
    rng = np.random.default_rng(seed)
    values, obs = {}, []
    layouts = {"methylation": [f"G{i}" for i in range(50)],
               "expression": [f"G{i}" for i in range(20, 60)]}
    for modality, genes in layouts.items():
        ids = [f"{modality[0].upper()}{i:04d}" for i in range(n)]
        age = rng.uniform(20, 80, n)
        x = rng.normal(size=(n, len(genes)))
        x[:, :8] += (age[:, None] - 50) / 10
        tissue = np.where(np.arange(n) % 2 == 0, "Blood", f"{modality} tissue")
        # methylation as beta values (the encoder refuses anything outside [0, 1])
        scaled = 1 / (1 + np.exp(-x / 2)) if modality == "methylation" else x * 2 + 5
        values[modality] = pd.DataFrame(scaled, index=ids, columns=genes)
        obs.append(pd.DataFrame({"modality": modality, "tissue": tissue, "age": age,
                                 "age_reported": np.round(age, 0)}, index=ids))
    return multimodal.ClockData(values, pd.concat(obs), "simulated")


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    return clock_problem.clock_problem(tiny_data(), seed=0, max_epochs=3, patience=2,
                                       workdir=tmp_path_factory.mktemp("work"), progress=False)


# --- the shared gene space -------------------------------------------------------------------

def test_feature_space_scales_per_modality_on_training_samples_and_zeroes_unmeasured(problem):
    space, table = problem.space, problem.table
    coverage = space.coverage().value_counts()
    assert coverage.to_dict() == {"both": 30, "methylation only": 20, "expression only": 10}
    fit_rows = table.loc[problem.train]
    for modality in ("methylation", "expression"):
        rows = fit_rows[fit_rows["modality"] == modality]
        measured = space.measured(modality)
        assert np.allclose(rows[measured].mean(), 0, atol=1e-5)
        assert np.allclose(rows[measured].std(ddof=0), 1, atol=1e-4)
        unmeasured = space.genes_not_in(modality)
        assert (table.loc[table["modality"] == modality, unmeasured] == 0).all().all()
    assert list(table.columns[-3:]) == ["tissue", "modality", "age"]


def test_encode_reports_missing_genes_values_and_unseen_tissues(problem):
    data, space = problem.data, problem.space
    values = data.values["methylation"].iloc[:5]
    with pytest.raises(MissingFeaturesError, match="2 of the model's 50 methylation genes"):
        multimodal.encode(space, values.drop(columns=["G3", "G7"]), data.obs, "methylation")
    table, report = multimodal.encode(space, values.drop(columns=["G3"]), data.obs,
                                      "methylation", allow_missing=True)
    assert report["genes_missing"] == ["G3"] and (table["G3"] == 0).all()
    holey = values.copy()
    holey.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="1 missing methylation values"):
        multimodal.encode(space, holey, data.obs, "methylation")
    obs = data.obs.copy()
    obs.loc[values.index[0], "tissue"] = "Retina"
    with pytest.raises(ValueError, match=r"tissue\(s\) \['Retina'\] were not seen"):
        multimodal.encode(space, values, obs, "methylation")
    with pytest.raises(ValueError, match="unknown modality 'proteomics'"):
        multimodal.encode(space, values, data.obs, "proteomics")


def test_feature_space_round_trips_through_json(problem, tmp_path):
    path = problem.space.save(tmp_path / "space.json")
    again = multimodal.FeatureSpace.load(path)
    assert again.genes == problem.space.genes and again.tissues == problem.space.tissues
    pd.testing.assert_frame_equal(again.scale, problem.space.scale, check_names=False)


# --- metrics -----------------------------------------------------------------------------------

def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"modality": np.repeat(["methylation", "expression"], 50),
                          "tissue": np.tile(["A", "B"], 50), "age": rng.uniform(0, 90, 100)})
    frame["predicted"] = frame["age"] + rng.normal(0, 5, 100)
    table = metrics.modality_table(frame)
    for modality, rows in [("methylation", frame[:50]), ("expression", frame[50:]),
                           ("combined", frame)]:
        y, p = rows["age"], rows["predicted"]
        assert table.loc["MAE", modality] == pytest.approx(skm.mean_absolute_error(y, p))
        assert table.loc["RMSE", modality] == pytest.approx(
            np.sqrt(skm.mean_squared_error(y, p)))
        assert table.loc["R2", modality] == pytest.approx(skm.r2_score(y, p))
        assert table.loc["MdAE", modality] == pytest.approx(skm.median_absolute_error(y, p))
        assert table.loc["n", modality] == len(rows)
    tissues = metrics.tissue_table(frame)
    assert tissues["MAE"].is_monotonic_increasing and tissues["test_samples"].sum() == 100
    row = tissues.iloc[0]
    rows = frame[(frame["tissue"] == row["tissue"]) & (frame["modality"] == row["modality"])]
    error = rows["predicted"] - rows["age"]
    assert row["MSE"] == pytest.approx(skm.mean_squared_error(rows["age"], rows["predicted"]))
    assert row["MAD"] == pytest.approx(np.median(np.abs(error - error.median())))


def test_mean_sd_over_folds():
    folds = [pd.DataFrame({"a": [1.0]}, index=["MAE"]), pd.DataFrame({"a": [3.0]}, index=["MAE"])]
    assert metrics.mean_sd(folds).loc["MAE", "a"] == "2.000 ± 1.414"


# --- training, determinism, saving ---------------------------------------------------------

def test_same_seed_gives_the_same_holdout_predictions(problem):
    test = problem.rows("test")
    runs = [transformer_clock.fit("tabtransformer", {}, problem.rows("fit"),
                                  problem.rows("valid"), problem.space.genes, problem.training)
            for _ in range(2)]
    first, second = (transformer_clock.predict(r.model, test) for r in runs)
    assert np.array_equal(first, second)
    assert len(runs[0].history) == 3 and {"train", "valid"} <= set(runs[0].history.columns)


def test_saved_clock_reloads_and_predicts_identically_and_refuses_tampering(problem, tmp_path):
    result = transformer_clock.fit("tabtransformer", {"l1": 1e-4}, problem.rows("fit"),
                                   problem.rows("valid"), problem.space.genes, problem.training)
    test = problem.rows("test")
    predicted = transformer_clock.predict(result.model, test)
    folder = transformer_clock.save_clock(tmp_path / "clock", result, problem.space,
                                          {"data": "simulated"})
    clock = transformer_clock.load_clock(folder)
    assert np.array_equal(clock.predict(test), predicted)
    assert clock.space.genes == problem.space.genes and clock.about["data"] == "simulated"
    (folder / "feature_space.json").write_text("{}")
    with pytest.raises(ValueError, match="sha256 differs"):
        transformer_clock.load_clock(folder)


def planted_problem(tmp_path, n: int = 240, epochs: int = 8):
    """A larger tiny problem whose age signal a network learns in a few epochs."""
    return clock_problem.clock_problem(tiny_data(seed=1, n=n), seed=0, max_epochs=epochs,
                                       patience=epochs, workdir=tmp_path, progress=False)


def test_the_training_loop_learns_as_well_as_pytorch_tabulars_trainer(tmp_path):
    # the reference is the library's own path (TabularModel.fit with Lightning's Trainer):
    # same network, data module, seed and epochs; both must learn the planted age signal
    problem = planted_problem(tmp_path)
    args = ("tabtransformer", {"batch_size": 32, "learning_rate": 1e-3}, problem.rows("fit"),
            problem.rows("valid"), problem.space.genes, problem.training)
    ours, library = transformer_clock.fit(*args), transformer_clock.lightning_fit(*args)
    test = problem.rows("test")
    spread = np.mean(np.abs(test["age"] - problem.rows("fit")["age"].mean()))
    maes = [np.mean(np.abs(transformer_clock.predict(r.model, test) - test["age"]))
            for r in (ours, library)]
    assert maes[0] < 0.6 * spread and maes[1] < 0.6 * spread  # both beat the mean age
    assert maes[0] == pytest.approx(maes[1], rel=0.35)
    # the restored weights are the best epoch's: their validation MAE is the history's minimum
    valid = problem.rows("valid")
    restored = np.mean(np.abs(transformer_clock.predict(ours.model, valid) - valid["age"]))
    assert restored == pytest.approx(ours.history["valid"].min(), rel=1e-4)
    assert ours.history.index[ours.history["valid"].argmin()] == ours.best_epoch


def test_early_stopping_and_pruning_stop_the_loop(problem):
    args = ("mlp", {}, problem.rows("fit"), problem.rows("valid"), problem.space.genes)
    long = transformer_clock.Training(max_epochs=30, patience=1, seed=0, progress=False)
    stopped = transformer_clock.fit(*args, long)
    best = stopped.history["valid"].argmin()
    assert len(stopped.history) == best + 2  # one epoch without improvement, then stop
    pruned = transformer_clock.fit(*args, long, on_epoch=lambda epoch, maes: epoch == 1)
    assert len(pruned.history) == 2


def test_a_split_is_prepared_once_and_any_change_prepares_it_again(problem):
    transformer_clock._prepared.clear()
    fit_rows, valid_rows = problem.rows("fit"), problem.rows("valid")
    genes = problem.space.genes
    first = transformer_clock.prepare_split(genes, fit_rows, valid_rows, problem.training)
    assert transformer_clock.prepare_split(genes, fit_rows.copy(), valid_rows.copy(),
                                           problem.training) is first
    changed = fit_rows.copy()
    changed.iloc[0, 0] += 1.0
    relabelled = fit_rows.copy()
    relabelled.iloc[0, relabelled.columns.get_loc("age")] += 1.0
    other_seed = transformer_clock.Training(seed=1)
    for args in ((genes, changed, valid_rows, problem.training),
                 (genes, relabelled, valid_rows, problem.training),
                 (genes[::-1], fit_rows, valid_rows, problem.training),
                 (genes, fit_rows, valid_rows, other_seed)):
        assert transformer_clock.prepare_split(*args) is not first


def test_every_fit_trains_on_the_device_torch_sees():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert transformer_clock.device().type == expected


def test_successive_halving_stops_a_trial_behind_the_best_at_five_epochs():
    import optuna

    assert isinstance(tuning.pruner("hyperband", 60), optuna.pruners.HyperbandPruner)
    assert isinstance(tuning.pruner("median", 60), optuna.pruners.MedianPruner)
    with pytest.raises(ValueError, match="unknown pruner 'asha'"):
        tuning.pruner("asha", 60)
    study = tuning.open_study("planted", None, seed=0, pruning="successive-halving")
    epochs = {}

    def objective(trial):  # trial 1 learns slower than trial 0 at every epoch
        offset = trial.number * 5.0
        for epoch in range(1, 31):
            trial.report(20.0 / epoch + offset, epoch)
            epochs[trial.number] = epoch
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 20.0 / 30 + offset

    study.optimize(objective, n_trials=2)
    assert epochs == {0: 30, 1: tuning.MIN_EPOCHS}  # judged at the first rung, then stopped
    assert study.trials[1].state == optuna.trial.TrialState.PRUNED


def test_a_network_study_prunes_a_trial_that_learns_slower(tmp_path):
    import optuna

    problem = planted_problem(tmp_path, n=200, epochs=12)
    study = tuning.open_study("pruning", None, seed=0, pruning="successive-halving")
    quick = {**tuning.paper_trial(), "depth": 1, "layer1": 64, "learning_rate": 1e-2}
    study.enqueue_trial(quick)
    study.enqueue_trial({**quick, "learning_rate": 1e-5})  # barely moves in 5 epochs
    study.optimize(tuning.network_objective(problem, "mlp"), n_trials=2)
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert second.state == optuna.trial.TrialState.PRUNED
    assert sorted(second.intermediate_values) == list(range(1, tuning.MIN_EPOCHS + 1))


def test_the_pruner_sentence_names_the_epochs_the_pruners_use():
    import optuna

    assert tuning.rungs(60, 5, 3) == [5, 15, 45] and tuning.rungs(60, 5, 4) == [5, 20]
    assert "after 5, 15 and 45 epochs" in tuning.describe_pruner("successive-halving", 60)
    assert "best quarter" in tuning.describe_pruner("successive-halving", 60, 5, 4)
    assert "none is stopped early" in tuning.describe_pruner("successive-halving", 4)
    hyperband = tuning.pruner("hyperband", 60)
    hyperband._try_initialization(optuna.create_study(pruner=hyperband))  # the library's count
    assert f"in {hyperband._n_brackets} bracket(s)" in tuning.describe_pruner("hyperband", 60)
    assert "after at least 5 epochs" in tuning.describe_pruner("median", 60)
    with pytest.raises(ValueError, match="unknown pruner 'asha'"):
        tuning.describe_pruner("asha", 60)


# --- Optuna ------------------------------------------------------------------------------------

def test_study_resumes_on_the_same_storage(problem, tmp_path):
    storage = tuning.default_storage(tmp_path)
    name = tuning.study_name("tabtransformer", problem)
    objective = tuning.network_objective(problem, "tabtransformer")
    study = tuning.open_study(name, storage, seed=0, enqueue=tuning.paper_trial())
    tuning.run_trials(study, objective, n_trials=2)
    resumed = tuning.open_study(name, storage, seed=0, enqueue=tuning.paper_trial())
    tuning.run_trials(resumed, objective, n_trials=2)
    again = tuning.open_study(name, storage, seed=0)
    assert len(again.trials) == 4 and tuning.finished(again) == 4
    first = again.trials[0].params  # the paper's configuration, enqueued once only
    assert tuning.network_hyperparameters(first) == transformer_clock.PAPER_HYPERPARAMETERS
    assert sum(t.params == first for t in again.trials) == 1
    tuning.run_trials(again, objective, total=4)  # already holds 4: nothing to add
    assert len(tuning.open_study(name, storage, seed=0).trials) == 4


def test_a_study_under_another_pruner_is_a_different_study(problem):
    default = tuning.study_name("tabtransformer", problem)
    assert tuning.study_name("tabtransformer", problem, tuning.DEFAULT_PRUNER) == default
    assert tuning.study_name("tabtransformer", problem, "hyperband") != default
    assert tuning.study_name("elasticnet-methylation", problem, "hyperband") == \
        tuning.study_name("elasticnet-methylation", problem)  # reports no epochs: not pruned


def test_search_rejects_unknown_models(problem, tmp_path):
    with pytest.raises(ValueError, match="unknown model 'xgboost'"):
        tuning.search(problem, "xgboost", tuning.default_storage(tmp_path), 1)


# --- baselines ---------------------------------------------------------------------------------

def test_elasticnet_recovers_the_planted_age_genes_and_beats_the_mean(problem):
    fit_rows, test = problem.rows("fit"), problem.rows("test")
    model = baselines.fit_elasticnet(fit_rows, problem.space, "methylation", 0.05, 0.5)
    rows = baselines.modality_rows(test, "methylation")
    enet_mae = np.mean(np.abs(baselines.predict_elasticnet(model, rows) - rows["age"]))
    mean = baselines.mean_age(fit_rows, rows)
    assert np.allclose(mean, fit_rows.loc[fit_rows["modality"] == "methylation", "age"].mean())
    assert enet_mae < 0.5 * np.mean(np.abs(mean - rows["age"]))
    weights = pd.Series(np.abs(model.coef_), index=model.genes_)
    assert set(weights.nlargest(8).index) == {f"G{i}" for i in range(8)}


def test_problem_splits_are_disjoint_and_the_target_is_chosen(problem):
    assert len(problem.test) == round(0.2 * len(problem.table))
    assert set(problem.fit) | set(problem.valid) == set(problem.train)
    assert not set(problem.fit) & set(problem.valid) and not set(problem.train) & set(problem.test)
    obs = problem.data.obs
    assert np.allclose(problem.table["age"], obs.loc[problem.table.index, "age_reported"])
    exact = clock_problem.clock_problem(problem.data, seed=0, target="age",
                                        about=problem.settings)
    assert exact.settings["target"] == "age" and exact.fingerprint() != problem.fingerprint()
    assert np.allclose(exact.table["age"], obs.loc[exact.table.index, "age"])
    assert exact.test.equals(problem.test)


def test_grouped_problem_and_its_folds_keep_each_donor_on_one_side(tmp_path):
    data = tiny_data(seed=3)
    expr = data.obs["modality"] == "expression"
    data.obs["donor"] = data.obs.index  # one methylome per person, as in the simulator
    data.obs.loc[expr, "donor"] = [f"D{i // 4:03d}" for i in range(int(expr.sum()))]
    grouped = clock_problem.clock_problem(data, seed=0, max_epochs=1, patience=1,
                                          workdir=tmp_path, progress=False, group="donor")
    donors = data.obs["donor"]
    assert not set(donors[grouped.test]) & set(donors[grouped.train])
    assert not set(donors[grouped.valid]) & set(donors[grouped.fit])
    folds = splits.cv_folds(data.obs, 4, by=("tissue", "modality"), seed=0,
                            group=grouped.settings["group"])
    assert (donors.groupby(folds).apply(set).map(len).sum() == donors.nunique())
    by_sample = clock_problem.clock_problem(data, seed=0, max_epochs=1, patience=1,
                                            workdir=tmp_path, progress=False)
    assert set(donors[by_sample.test]) & set(donors[by_sample.train])  # the paper's split leaks


def test_the_ft_transformer_attends_over_every_gene_and_trains(problem):
    from pytorch_tabular.models import FTTransformerConfig

    config = transformer_clock.model_config("fttransformer",
                                            transformer_clock.PAPER_HYPERPARAMETERS)
    assert isinstance(config, FTTransformerConfig)
    result = transformer_clock.fit("fttransformer", transformer_clock.PAPER_HYPERPARAMETERS,
                                   problem.rows("fit"), problem.rows("valid"),
                                   problem.space.genes, problem.training)
    predicted = transformer_clock.predict(result.model, problem.rows("test"))
    assert np.isfinite(predicted).all() and len(predicted) == len(problem.test)
    # one embedded token per gene: attention runs over the genes, not only the categories
    embedding = result.model.model.embedding_layer
    assert embedding.cont_embedding_layer.num_embeddings == len(problem.space.genes)
