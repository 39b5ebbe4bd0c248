"""Transfer learning and SHAP: the aging-aware classifier keeps every frozen weight and
BatchNorm statistic, uses the regressor's category codes, the SHAP wrapper reproduces the
models, SHAP finds the planted age genes, and Supplementary Table 8's paired tests agree with
scipy."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.precious1gpt import (
    clock_problem,
    gene_rankings,
    importance,
    transfer,
    transformer_clock,
)
from tests.test_transformer_clock import tiny_data

AGE_GENES = {f"G{i}" for i in [*range(8), *range(20, 28)]}  # tiny_data: first 8 of each modality
DISEASE_GENES = [f"G{i}" for i in range(40, 46)]  # measured by expression, no age effect


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    """A small TabTransformer regressor, saved and reloaded like the chapters' clocks."""
    problem = clock_problem.clock_problem(tiny_data(), seed=0, max_epochs=20, patience=20,
                                          workdir=tmp_path_factory.mktemp("work"),
                                          progress=False)
    result = transformer_clock.fit("tabtransformer", {"layers": "32-64-32", "learning_rate": 1e-3},
                                   problem.rows("fit"), problem.rows("valid"),
                                   problem.space.genes, problem.training)
    folder = transformer_clock.save_clock(tmp_path_factory.mktemp("clock") / "clock", result,
                                          problem.space, {"data": "simulated"})
    clock = transformer_clock.load_clock(folder)
    return clock, problem


def disease_cohort(n_per_arm: int = 40, seed: int = 1, tissue: str = "expression tissue"):
    """Expression cases and controls; cases shifted on DISEASE_GENES."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(20, 60)]
    case = np.repeat([0, 1], n_per_arm)
    x = rng.normal(5, 2, size=(2 * n_per_arm, len(genes)))
    shifted = [genes.index(g) for g in DISEASE_GENES]
    x[:, shifted] += 3.0 * case[:, None]
    obs = pd.DataFrame({"modality": "expression", "tissue": tissue, "case": case,
                        "age": rng.uniform(40, 80, 2 * n_per_arm)},
                       index=[f"S{i:03d}" for i in range(2 * n_per_arm)])
    return ad.AnnData(pd.DataFrame(x, index=obs.index, columns=genes), obs=obs)


@pytest.fixture(scope="module")
def disease(regressor):
    clock, _ = regressor
    table = transfer.disease_table(clock.space, disease_cohort())
    split = transfer.repeated_splits(table[transfer.LABEL], 1, 0)[0]
    return table, split


def test_finetuning_changes_only_the_last_layer_and_keeps_batchnorm_statistics(regressor,
                                                                               disease,
                                                                               tmp_path):
    clock, _ = regressor
    table, split = disease
    tuning = transfer.FineTuning(max_epochs=5, patience=5, finetune_learning_rate=1e-2)
    model = transfer.fit_classifier(clock, table, split, "pretrained", tuning, 0, tmp_path)
    changed, new, shared = transfer.weight_changes(clock.model.model, model.model)
    last = transfer.last_layer(model.model)
    assert new == [f"{last}.bias", f"{last}.weight"]
    assert changed == []  # every loaded tensor, BatchNorm running statistics included
    assert shared > 20 and any("running_mean" in n for n in
                               dict(model.model.named_buffers()))
    # the scratch arm trains everything: its weights are not the regressor's
    scratch = transfer.fit_classifier(clock, table, split, "scratch", tuning, 0, tmp_path)
    changed_scratch, _, _ = transfer.weight_changes(clock.model.model, scratch.model)
    assert len(changed_scratch) > 20


def test_classifier_uses_the_regressor_category_codes(regressor, disease):
    clock, _ = regressor
    table, split = disease
    codes = transfer.category_codes(clock.model.datamodule.categorical_encoder,
                                    table.loc[split["fit"]])
    # a refitted encoder would code the only tissue as 1; the regressor's codes it otherwise
    from pytorch_tabular.categorical_encoders import OrdinalEncoder

    frame = table.loc[split["fit"], ["tissue", "modality"]]
    refit = OrdinalEncoder(cols=["tissue", "modality"]).fit_transform(frame.copy())
    assert not np.array_equal(codes, refit.astype(np.int64).to_numpy())
    mapping = clock.model.datamodule.categorical_encoder._mapping
    assert (codes[:, 0] == mapping["tissue"].loc["expression tissue", "value"]).all()
    assert (codes[:, 1] == mapping["modality"].loc["expression", "value"]).all()


def test_shap_wrapper_reproduces_the_models(regressor, disease, tmp_path):
    clock, problem = regressor
    assert importance.check_wrapper(clock.model, problem.rows("test"), clock.space.genes,
                                    "years") < 1e-3
    table, split = disease
    tuning = transfer.FineTuning(max_epochs=3, patience=3)
    model = transfer.fit_classifier(clock, table, split, "pretrained", tuning, 0, tmp_path)
    assert importance.check_wrapper(model, table, clock.space.genes, "log_odds") < 1e-3
    with pytest.raises(ValueError, match="groups"):
        importance.wrapper_for(clock.model, problem.rows("test"), "years")


def test_shap_ranks_the_planted_age_genes_first(regressor):
    clock, problem = regressor
    rows = importance.stratified_rows(problem.rows("test"), 40, 0)
    values = importance.explain(clock.model, rows, problem.rows("train"), clock.space.genes,
                                "years", n_background=30, nsamples=100, seed=0)
    assert values.shape == (len(rows), len(clock.space.genes))
    ranking = importance.rank_genes(values, rows, problem.data.obs["modality"],
                                    clock.space.coverage())
    assert importance.top_precision(ranking, AGE_GENES, 16)["precision"] >= 0.75
    # the planted genes rise with age, so a higher value predicts an older age
    assert (ranking.loc[sorted(AGE_GENES), "direction"] > 0).mean() >= 0.75
    assert np.isclose(ranking.filter(like="mean_abs_shap_").sum(axis=1),
                      ranking["mean_abs_shap"]).all()


def test_top_precision_counts_hits_and_the_best_possible():
    ranking = pd.DataFrame({"rank": [1, 2, 3, 4]}, index=["a", "b", "c", "d"])
    scores = importance.top_precision(ranking, {"a", "c", "z"}, 2)
    assert scores["hits"] == 1 and scores["precision"] == 0.5
    assert scores["recall"] == pytest.approx(1 / 3) and scores["best_possible_precision"] == 1.0


def test_paired_tests_agree_with_scipy():
    rng = np.random.default_rng(0)
    rows = []
    for split in range(6):
        base = rng.uniform(0.6, 0.8)
        for arm, shift in (("pretrained", 0.03), ("scratch", 0.0)):
            rows.append({"disease": "copd", "split": split, "arm": arm,
                         **{m: base + shift + rng.normal(0, 0.005) for m in transfer.METRICS}})
    results = pd.DataFrame(rows)
    table = transfer.paired_tests(results).set_index("metric")
    wide = results.pivot(index="split", columns="arm", values="AUROC")
    expected = stats.ttest_rel(wide["pretrained"], wide["scratch"]).pvalue
    assert table.loc["AUROC", "t_test_p"] == pytest.approx(expected)
    assert table.loc["AUROC", "wilcoxon_p"] == pytest.approx(2 / 2**6)  # all 6 positive
    assert table.loc["AUROC", "difference"] > 0 and table.loc["AUROC", "splits"] == 6


def test_paired_tests_are_refused_below_five_splits():
    rows = [{"disease": "copd", "split": split, "arm": arm,
             **{m: 0.7 + (0.05 if arm == "pretrained" else 0.0) + 0.01 * split
                for m in transfer.METRICS}}
            for split in range(transfer.MIN_PAIRED_SPLITS - 1)
            for arm in ("pretrained", "scratch")]
    table = transfer.paired_tests(pd.DataFrame(rows)).set_index("metric")
    assert table.loc["AUROC", "difference"] == pytest.approx(0.05)  # the means are kept
    assert table[["t_test_p", "wilcoxon_p"]].isna().all().all()     # the tests are not
    shown = transfer.shown_table8(table.reset_index()).set_index("metric")
    assert shown.loc["AUROC", "t_test_p"] == "too few splits (4; at least 5)"
    assert shown.loc["AUROC", "pretrained"].endswith(" ± 0.013")


def test_repeated_splits_are_stratified_disjoint_and_seeded():
    labels = pd.Series(np.repeat([0, 1], 40), index=[f"S{i}" for i in range(80)])
    splits = transfer.repeated_splits(labels, 3, seed=5)
    assert len(splits) == 3
    for split in splits:
        parts = [set(split[k]) for k in ("fit", "valid", "test")]
        assert sum(map(len, parts)) == 80 and not (parts[0] & parts[1] or parts[0] & parts[2])
        assert labels[split["test"]].mean() == 0.5
    again = transfer.repeated_splits(labels, 3, seed=5)
    assert all(a["test"].equals(b["test"]) for a, b in zip(splits, again, strict=True))
    assert not splits[0]["test"].equals(splits[1]["test"])


def test_disease_table_names_a_missing_label(regressor):
    clock, _ = regressor
    cohort = disease_cohort()
    del cohort.obs["case"]
    with pytest.raises(ValueError, match="'case'"):
        transfer.disease_table(clock.space, cohort)


def test_ranking_settings_refuse_unknown_names():
    assert gene_rankings.settings_for(shap_explained=10)["shap_explained"] == 10
    with pytest.raises(ValueError, match="shap_samples"):
        gene_rankings.settings_for(shap_samples=10)


def test_the_same_seed_gives_the_same_classifier(regressor, disease, tmp_path):
    clock, _ = regressor
    table, split = disease
    tuning = transfer.FineTuning(max_epochs=3, patience=3)
    template = transfer.classifier_model(clock, "scratch", tuning)
    first, second = (transfer.fit_classifier(clock, table, split, "scratch", tuning, 7, tmp_path,
                                             template) for _ in range(2))
    test = table.loc[split["test"]]
    assert np.array_equal(transfer.case_probability(first, test),
                          transfer.case_probability(second, test))
    with pytest.raises(ValueError, match="unknown arm"):
        transfer.classifier_model(clock, "frozen", tuning)


def test_rankings_round_trip_through_their_folder(tmp_path):
    ranking = pd.DataFrame({"rank": [1, 2], "mean_abs_shap": [0.5, 0.25],
                            "measured_in": ["both", ""]}, index=pd.Index(["A", "B"], name="gene"))
    diseases = {arm: {"copd": ranking[["rank", "mean_abs_shap"]]} for arm in transfer.ARMS}
    saved = gene_rankings.Rankings(ranking, diseases, {"diseases": ["copd"]})
    loaded = gene_rankings.Rankings.load(saved.save(tmp_path / "r"))
    pd.testing.assert_frame_equal(loaded.regressor, ranking, check_dtype=False)
    for arm in transfer.ARMS:
        pd.testing.assert_frame_equal(loaded.diseases[arm]["copd"], diseases[arm]["copd"])
