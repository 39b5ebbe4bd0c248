"""HallmarkAge on real donor pseudobulks: the loader's refusals, the real file's shape, scores
equal to scanpy's on the real panel, repeated donor cross-validation and leave-one-dataset-out
that never let a held-out donor into a fit, the random-set null and the residual reading."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.common import splits
from helpers.data import loaders
from helpers.data.formats import DataFormatError
from helpers.hallmarkage import (
    clock_diagnostics,
    donor_clocks,
    hallmark_classifiers,
    hallmark_clocks,
    hallmark_scoring,
    hallmark_sets,
    pseudobulk,
)
from tests.conftest import requires_real_data


def donors(n=60, n_genes=200, seed=0):
    """One log1p profile per donor in three datasets; genes 0-11 rise with age."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 85, n)
    values = rng.uniform(1, 6, n_genes) + rng.normal(0, 0.3, (n, n_genes))
    values[:, :12] += (age[:, None] - 50) / 30
    ids = [f"d{i}" for i in range(n)]
    genes = [f"G{i}" for i in range(n_genes)]
    obs = pd.DataFrame({"donor": ids, "age": age,
                        "dataset": np.array(["a", "b", "c"])[np.arange(n) % 3]}, index=ids)
    profiles = pseudobulk.Profiles(obs, pd.DataFrame(np.clip(values, 0, None), ids, genes),
                                   pd.DataFrame(index=ids))
    sets = {"rising": genes[:12], "flat": genes[50:60], "other": genes[100:115]}
    return profiles, sets


def write_h5ad(path, X, obs, genes):
    ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs,
               var=pd.DataFrame(index=genes)).write_h5ad(path)
    return path


def good_file(tmp_path, **changes):
    obs = pd.DataFrame({"age": [25.0, 60.0, 41.0], "dataset": ["x", "x", "y"]},
                       index=["x_0", "x_1", "y_0"])
    X = np.log1p(np.array([[3.0, 0, 10], [1, 2, 5], [0, 7, 2]]) * 100)
    args = {"X": X, "obs": obs, "genes": ["A", "B", "C"], **changes}
    return write_h5ad(tmp_path / "pb.h5ad", args["X"], args["obs"], args["genes"])


def test_a_good_pseudobulk_file_is_read_with_donor_age_and_dataset(tmp_path):
    adata = loaders.read_donor_pseudobulks(good_file(tmp_path), "pb.h5ad")
    assert adata.obs["donor"].tolist() == ["x_0", "x_1", "y_0"]
    assert adata.obs["age"].tolist() == [25.0, 60.0, 41.0]
    assert adata.obs["dataset"].tolist() == ["x", "x", "y"]
    # the verified-bytes path gives the same object
    same = loaders.read_donor_pseudobulks((tmp_path / "pb.h5ad").read_bytes(), "pb.h5ad")
    np.testing.assert_array_equal(adata.X, same.X)


@pytest.mark.parametrize("change, message", [
    ({"obs": pd.DataFrame({"dataset": ["x", "x", "y"]}, index=["a", "b", "c"])},
     r"missing field\(s\) \['age'\]"),
    ({"obs": pd.DataFrame({"age": ["25", "old", "41"], "dataset": ["x", "x", "y"]},
                          index=["a", "b", "c"])}, "field age is missing, non-numeric"),
    ({"obs": pd.DataFrame({"age": [25.0, np.nan, 41.0], "dataset": ["x", "x", "y"]},
                          index=["a", "b", "c"])}, "field age is missing"),
    ({"genes": ["A", "A", "C"]}, r"var names \(gene symbols\) repeat: \['A'\]"),
    ({"X": np.array([[3.0, 0, 10], [1, 2, 5], [0, 7, 2]])}, "looks like counts"),
    ({"X": np.array([[300.5, 0, 10], [1, 2, 5], [0, 7, 2]])}, "looks like counts or unlogged"),
    ({"X": np.array([[-1.5, 0, 1], [1, 2, 5], [0, 7, 2]])}, "negative values"),
])
def test_bad_pseudobulk_files_are_refused_by_name(tmp_path, change, message):
    path = good_file(tmp_path, **change)
    with pytest.raises(DataFormatError, match=message) as error:
        loaders.read_donor_pseudobulks(path, "pb.h5ad")
    assert "pb.h5ad" in str(error.value)


def test_duplicated_donors_and_truncated_files_are_refused(tmp_path):
    path = good_file(tmp_path)
    data = ad.read_h5ad(path)
    data.obs_names = ["x_0", "x_0", "y_0"]
    data.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(DataFormatError, match=r"obs names \(donors\) repeat: \['x_0'\]"):
        loaders.read_donor_pseudobulks(tmp_path / "dup.h5ad", "dup.h5ad")
    truncated = path.read_bytes()[:500]
    with pytest.raises(DataFormatError, match="trunc.h5ad: not a readable h5ad file"):
        loaders.read_donor_pseudobulks(truncated, "trunc.h5ad")


@requires_real_data
def test_the_real_file_is_755_donors_of_three_studies_with_package_statistics():
    adata = loaders.load_cd4t_pseudobulk()
    assert adata.shape == (755, 2025)
    assert adata.obs["dataset"].value_counts().to_dict() == {"aida": 623, "perez_sle": 99,
                                                             "zhang": 33}
    assert adata.obs["age"].between(21, 90).all()
    assert adata.uns["provenance"]["sha256"].startswith("12e627d7")
    stats = loaders.load_cd4t_aging_stats()
    assert stats.index.equals(adata.var_names)
    assert stats["pooled_rho"].abs().min() >= 0.1  # the panel was selected for age


@requires_real_data
def test_bulk_scores_on_the_real_panel_equal_scanpy_score_genes():
    adata = loaders.load_cd4t_pseudobulk()
    report = hallmark_sets.detection_report(hallmark_sets.load_frameworks(), adata.var_names)
    sets = dict(list(hallmark_sets.kept_gene_sets(report).items())[:8])
    values = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    profiles = pseudobulk.Profiles(adata.obs, values, pd.DataFrame(index=adata.obs_names))
    ours = profiles.with_scores(sets, seed=2).hallmarks
    reference = hallmark_scoring.score_with_scanpy(adata.copy(), sets, random_state=2)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), atol=1e-6)


@pytest.fixture
def fitted_training_rows(monkeypatch) -> list[np.ndarray]:
    """The training rows of every clock fit, in call order (a spy on fit_profile_clocks)."""
    seen = []
    original = hallmark_clocks.fit_profile_clocks

    def spy(profiles_, sets_, train_rows, *args, **kwargs):
        seen.append(np.asarray(train_rows, bool).copy())
        return original(profiles_, sets_, train_rows, *args, **kwargs)

    monkeypatch.setattr(hallmark_clocks, "fit_profile_clocks", spy)
    return seen


def test_repeated_cross_validation_predicts_every_donor_once_per_repeat_unseen(
        fitted_training_rows):
    profiles, sets = donors()
    folds = splits.repeated_folds(profiles.obs, 4, 2, by=("dataset",), group="donor", seed=0)
    settings = hallmark_clocks.Settings(n_hvg=80, n_pcs=8, seed=0)
    cv = donor_clocks.repeated_cross_validation(profiles, sets, folds, settings)
    counts = cv.predictions.groupby(["clock", "repeat"])["donor"].agg(["size", "nunique"])
    assert (counts["size"] == len(profiles.obs)).all() and (counts["nunique"] == 60).all()
    assert len(fitted_training_rows) == 8
    expected = [(repeat, fold) for repeat in (0, 1) for fold in range(4)]
    for train_rows, (repeat, fold) in zip(fitted_training_rows, expected, strict=True):
        held_out = (folds[repeat] == fold).to_numpy()
        assert not (train_rows & held_out).any() and (train_rows | held_out).all()
    # the mean-age baseline is the training donors' mean
    first = cv.predictions[(cv.predictions["clock"] == "mean_age") & (cv.predictions["repeat"] == 0)
                           & (cv.predictions["fold"] == 0)]
    assert first["predicted"].iloc[0] == pytest.approx(
        profiles.obs.loc[(folds[0] != 0).to_numpy(), "age"].mean())
    assert set(cv.coefficients["clock"]) == {"hallmark", "hybrid"}


def test_scrambling_held_out_donors_changes_nothing_fitted_for_their_fold():
    profiles, sets = donors()
    folds = splits.repeated_folds(profiles.obs, 3, 1, by=("dataset",), group="donor", seed=1)
    held_out = (folds[0] == 0).to_numpy()
    values = profiles.values.copy()
    values.loc[held_out] = np.random.default_rng(5).uniform(0, 9, values.loc[held_out].shape)
    obs = profiles.obs.copy()
    obs.loc[held_out, "age"] = 99.0
    scrambled = pseudobulk.Profiles(obs, values, profiles.hallmarks)
    settings = hallmark_clocks.Settings(n_hvg=80, n_pcs=8, seed=0)
    a = donor_clocks.repeated_cross_validation(profiles, sets, folds, settings)
    b = donor_clocks.repeated_cross_validation(scrambled, sets, folds, settings)
    fold0 = lambda t: t[t["fold"] == 0].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(fold0(a.coefficients), fold0(b.coefficients))
    pd.testing.assert_frame_equal(fold0(a.penalties), fold0(b.penalties))
    # other folds trained on the scrambled donors, so their coefficients differ
    assert not np.allclose(a.coefficients[a.coefficients["fold"] == 1]["coefficient"],
                           b.coefficients[b.coefficients["fold"] == 1]["coefficient"])


def test_leave_one_dataset_out_holds_out_exactly_one_dataset(fitted_training_rows):
    profiles, sets = donors()
    settings = hallmark_clocks.Settings(n_hvg=80, n_pcs=8, seed=0)
    table, predictions = donor_clocks.leave_one_dataset_out(profiles, sets, settings)
    dataset = profiles.obs["dataset"].to_numpy()
    for train_rows, value in zip(fitted_training_rows, ["a", "b", "c"], strict=True):
        assert set(dataset[~train_rows]) == {value}
        assert set(dataset[train_rows]) == {"a", "b", "c"} - {value}
    assert (table["n_train"] + table["n_test"] == 60).all()
    assert set(table["clock"]) == {"mean_age", *hallmark_clocks.CLOCKS}
    per_held_out = predictions.groupby("clock")["donor"].nunique()
    assert (per_held_out == 60).all()
    mean_a = table[(table["held-out dataset"] == "a") & (table["clock"] == "mean_age")]
    truth = profiles.obs[profiles.obs["dataset"] == "a"]["age"]
    train_mean = profiles.obs[profiles.obs["dataset"] != "a"]["age"].mean()
    assert mean_a["MAE"].iloc[0] == pytest.approx((truth - train_mean).abs().mean())
    with pytest.raises(ValueError, match="at least two values"):
        one = pseudobulk.Profiles(profiles.obs.assign(dataset="a"), profiles.values,
                                  profiles.hallmarks)
        donor_clocks.leave_one_dataset_out(one, sets, settings)


def test_paired_mae_difference_and_performance_table():
    rows = []
    for repeat in (0, 1):
        for i, age in enumerate([30.0, 50.0, 70.0, 40.0]):
            rows += [{"donor": f"d{i}", "repeat": repeat, "age": age, "clock": "a",
                      "predicted": age + 2}, {"donor": f"d{i}", "repeat": repeat, "age": age,
                                              "clock": "b", "predicted": age - 5}]
    predictions = pd.DataFrame(rows)
    diff = donor_clocks.mae_difference(predictions, "a", "b", n_boot=200)
    assert diff["difference"] == pytest.approx(-3.0)
    assert diff["low"] == pytest.approx(-3.0) and diff["high"] == pytest.approx(-3.0)
    ALL = donor_clocks.ALL_LABELS
    ALL.setdefault("a", "A"), ALL.setdefault("b", "B")
    try:
        table = donor_clocks.performance(predictions, n_boot=100)
    finally:
        ALL.pop("a"), ALL.pop("b")
    assert table.loc["a", "MAE"] == pytest.approx(2.0)
    assert table.loc["b", "MAE"] == pytest.approx(5.0)
    assert table.loc["a", "MAE SD over repeats"] == pytest.approx(0.0)
    assert table.loc["a", "donors"] == 4 and table.loc["a", "repeats"] == 2


def test_coefficient_intervals_over_fold_fits():
    coefficients = pd.DataFrame({"clock": "hybrid", "hallmark": ["x"] * 4 + ["y"] * 4,
                                 "coefficient": [1.0, 2, 3, 4, -1, -2, 1, -3]})
    table = donor_clocks.coefficient_intervals(coefficients, level=1.0)
    assert table.loc[("hybrid", "x"), "median"] == 2.5
    assert table.loc[("hybrid", "x"), "low"] == 1 and table.loc[("hybrid", "x"), "high"] == 4
    assert table.loc[("hybrid", "y"), "share positive"] == 0.25
    assert table.loc[("hybrid", "y"), "fits"] == 4


def test_random_gene_sets_come_from_the_panel_with_the_asked_sizes():
    panel = [f"G{i}" for i in range(50)]
    sets = hallmark_scoring.random_gene_sets(panel, [3, 5, 3], n_draws=4, seed=7)
    assert len(sets) == 8
    assert all(len(genes) == int(name[6:].split("_")[0]) for name, genes in sets.items())
    assert all(set(genes) <= set(panel) and len(set(genes)) == len(genes)
               for genes in sets.values())
    assert sets == hallmark_scoring.random_gene_sets(panel, [3, 5], n_draws=4, seed=7)
    assert sets != hallmark_scoring.random_gene_sets(panel, [3, 5], n_draws=4, seed=8)
    with pytest.raises(ValueError, match="a random set of 60 genes needs 1..50"):
        hallmark_scoring.random_gene_sets(panel, [60], n_draws=1)


def test_null_percentile_against_random_sets_of_the_same_size():
    null = pd.Series([0.1, 0.2, 0.3, 0.4, 0.9, 0.8],
                     index=["random3_0", "random3_1", "random3_2", "random3_3", "random5_0",
                            "random5_1"])
    table = hallmark_scoring.null_percentile(pd.Series({"h": 0.35, "k": 0.85}), null,
                                             pd.Series({"h": 3, "k": 5}))
    assert table.loc["h", "percentile"] == 75.0
    assert table.loc["h", "empirical p"] == pytest.approx(2 / 5)
    assert table.loc["k", "percentile"] == 50.0
    with pytest.raises(ValueError, match="no random sets of size 4"):
        hallmark_scoring.null_percentile(pd.Series({"h": 0.3}), null, pd.Series({"h": 4}))


def test_residual_association_finds_the_planted_gene_and_age_adjustment_drops_pure_age():
    from scipy import stats

    rng = np.random.default_rng(2)
    n = 300
    age = pd.Series(rng.uniform(20, 80, n))
    hidden = rng.normal(0, 1, n)
    residual = pd.Series(0.3 * (age - 50) + 3 * hidden + rng.normal(0, 1, n))
    values = pd.DataFrame({"planted": hidden + rng.normal(0, 0.5, n),
                           "pure_age": age / 10 + rng.normal(0, 0.2, n),
                           "noise": rng.normal(0, 1, n)})
    raw = clock_diagnostics.residual_gene_association(values, residual)
    adjusted = clock_diagnostics.residual_gene_association(values, residual, age=age)
    assert "planted" in raw.index[:2] and raw.loc["planted", "fdr"] < 0.05
    assert adjusted.index[0] == "planted"
    assert raw.loc["pure_age", "fdr"] < 0.05  # a shrunken clock's residual tracks age
    assert adjusted.loc["pure_age", "fdr"] > 0.05
    assert adjusted.loc["noise", "fdr"] > 0.05
    reference = stats.spearmanr(values["planted"], residual)
    assert raw.loc["planted", "rho"] == pytest.approx(reference[0])
    assert raw.loc["planted", "p"] == pytest.approx(reference[1])
    with pytest.raises(ValueError, match="have no residual"):
        clock_diagnostics.residual_gene_association(values, residual.iloc[:10])


def test_state_features_can_leave_a_hallmarks_own_genes_out():
    profiles, sets = donors()
    adata = ad.AnnData(profiles.values.to_numpy(), obs=profiles.obs,
                       var=pd.DataFrame(index=profiles.values.columns))
    train = np.arange(60) % 3 != 0
    _, genes = hallmark_classifiers.gene_pca_features(adata, train, n_hvg=150, n_pcs=5,
                                                      exclude=sets["rising"])
    assert not set(genes) & set(sets["rising"])
    _, with_them = hallmark_classifiers.gene_pca_features(adata, train, n_hvg=150, n_pcs=5)
    assert set(with_them) & set(sets["rising"])


def test_held_out_errors_beside_the_same_donors_in_cross_validation():
    cv = pd.DataFrame({"dataset": ["a", "a", "b"], "clock": "hybrid", "age": [30.0, 50, 40],
                       "predicted": [32.0, 46, 40], "donor": ["d1", "d2", "d3"],
                       "repeat": 0})
    lodo = pd.DataFrame({"held-out dataset": ["a", "b"], "clock": "hybrid", "MAE": [5.0, 1.0]})
    table = donor_clocks.against_cross_validation(lodo, cv)
    assert table["MAE in CV"].tolist() == [3.0, 0.0] and table["change"].tolist() == [2.0, 1.0]
    means = donor_clocks.mean_over_repeats(pd.concat([cv, cv.assign(repeat=1, predicted=30.0)]))
    assert means.set_index("donor").loc["d1", "predicted"] == 31.0


def test_age_direction_reads_rho_sign_at_the_fdr_level():
    association = pd.DataFrame({"rho": [0.3, -0.2, 0.4], "fdr": [0.01, 0.02, 0.2]},
                               index=["up", "down", "flat"])
    assert hallmark_scoring.age_direction(association, 0.05).tolist() == ["rises", "falls",
                                                                          "no trend"]
