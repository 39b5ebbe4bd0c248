"""Metacells, donor-level clocks and their diagnostics (HallmarkAge II) on a small toy atlas
whose age genes are planted."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.common.metrics import age_metrics
from helpers.hallmarkage import clock_diagnostics, hallmark_clocks, pseudobulk

AGES = {"d0": 20, "d1": 25, "d2": 30, "d3": 35, "d4": 55, "d5": 60, "d6": 65, "d7": 70}
AGE_GENES = [f"age{i}" for i in range(10)]


def toy_atlas(seed: int = 0, cells_per_unit: int = 30) -> ad.AnnData:
    """8 donors x 2 datasets x 2 batches; 10 planted genes rise with age; the last donor has
    only 3 cells in one unit."""
    rng = np.random.default_rng(seed)
    genes = AGE_GENES + [f"g{i}" for i in range(190)]
    rows = []
    for donor, age in AGES.items():
        for dataset in ("A", "B"):
            for batch in ("cells", "nuclei"):
                n = 3 if (donor, dataset, batch) == ("d7", "B", "nuclei") else cells_per_unit
                rows += [(donor, age, "old" if age >= 45 else "young", dataset, batch)] * n
    obs = pd.DataFrame(rows, columns=["donor", "age", "age_group", "dataset", "batch"])
    obs.index = obs.index.astype(str)
    base = rng.gamma(2.0, 1.0, len(genes))
    mu = np.tile(base, (len(obs), 1))
    mu[:, :10] *= np.exp2(obs["age"].to_numpy()[:, None] / 25)[:, [0] * 10]
    mu *= np.where(obs["batch"].to_numpy() == "nuclei", 0.6, 1.0)[:, None]
    counts = sp.csr_matrix(rng.poisson(mu).astype(np.float32))
    adata = ad.AnnData(X=counts.copy(), obs=obs, var=pd.DataFrame(index=genes))
    adata.layers["counts"] = counts
    return adata


def toy_scores(adata: ad.AnnData) -> pd.DataFrame:
    """Two 'hallmark' scores: the planted age genes' mean log count, and an unrelated one."""
    x = np.log1p(adata.layers["counts"].toarray())
    return pd.DataFrame({"score_age_program": x[:, :10].mean(axis=1),
                         "score_null_program": x[:, 50:60].mean(axis=1)}, index=adata.obs_names)


@pytest.fixture(scope="module")
def toy():
    adata = toy_atlas()
    return adata, pseudobulk.build(adata, toy_scores(adata), k=10, per_unit=4, seed=0)


SETTINGS = hallmark_clocks.Settings(n_hvg=60, n_pcs=5, hvg_span=0.5, alphas=(1.0, 10.0))


def test_metacells_draw_with_replacement_only_when_a_unit_is_short(toy):
    adata, mc = toy
    plan = mc.plan.toarray()
    assert (plan.sum(axis=1) == 10).all()  # k draws each
    short = (mc.obs["donor"] == "d7") & (mc.obs["dataset"] == "B") & (mc.obs["batch"] == "nuclei")
    assert short.sum() == 4 and mc.obs.loc[short, "replaced"].all()
    assert not mc.obs.loc[~short, "replaced"].any()
    assert plan[~short.to_numpy()].max() == 1  # no cell twice in a full unit's metacell
    assert plan[short.to_numpy()].max() > 1  # 10 draws from 3 cells repeat
    for i, row in enumerate(mc.obs.itertuples()):  # draws stay inside their unit
        drawn = adata.obs.iloc[np.flatnonzero(plan[i])]
        assert set(drawn["donor"]) == {row.donor} and set(drawn["dataset"]) == {row.dataset}
        assert set(drawn["batch"]) == {row.batch}
        assert row.age == pytest.approx(drawn["age"].iloc[0])
    np.testing.assert_allclose(mc.counts, plan @ adata.layers["counts"].toarray(), rtol=1e-6)


def test_metacell_plan_rejects_missing_fields_and_bad_sizes():
    obs = pd.DataFrame({"donor": ["a"], "dataset": ["x"], "age": [30.0]})
    with pytest.raises(ValueError, match="batch"):
        pseudobulk.metacell_plan(obs, 5, 2)
    with pytest.raises(ValueError, match="k=0"):
        pseudobulk.metacell_plan(obs.assign(batch="b"), 0, 2)


def test_donor_folds_are_disjoint_stratified_and_seeded():
    obs = pd.DataFrame({"donor": list(AGES), "age_group": ["young"] * 4 + ["old"] * 4})
    folds = hallmark_clocks.donor_folds(obs, 4, seed=1)
    assert folds.index.is_unique and set(folds.index) == set(AGES)
    for fold in range(4):
        groups = obs.set_index("donor").loc[folds.index[folds == fold], "age_group"]
        assert set(groups) == {"young", "old"}
    assert folds.equals(hallmark_clocks.donor_folds(obs, 4, seed=1))
    with pytest.raises(ValueError, match="n_folds"):
        hallmark_clocks.donor_folds(obs, 9)


def test_no_donor_is_on_both_sides_of_a_fold(toy, monkeypatch):
    adata, mc = toy
    folds = hallmark_clocks.donor_folds(adata.obs, 4, seed=0)
    seen = []
    real = hallmark_clocks.fit_clocks

    def spy(adata_, mc_, train_cells, train_rows, settings, clocks=hallmark_clocks.CLOCKS):
        seen.append((set(adata_.obs.loc[np.asarray(train_cells), "donor"]),
                     set(mc_.obs.loc[np.asarray(train_rows), "donor"])))
        return real(adata_, mc_, train_cells, train_rows, settings, clocks)

    monkeypatch.setattr(hallmark_clocks, "fit_clocks", spy)
    predictions, _ = hallmark_clocks.cross_validate(adata, mc, folds, SETTINGS)
    assert len(seen) == 4
    for fold, (cell_donors, row_donors) in enumerate(seen):
        tested = set(predictions.loc[predictions["fold"] == fold, "donor"])
        assert tested == set(folds.index[folds == fold])
        assert not tested & cell_donors and not tested & row_donors
    # every metacell is predicted exactly once per clock
    assert (predictions.groupby("clock").size() == len(mc.obs)).all()
    assert predictions.index.to_series().groupby(predictions["clock"]).apply(
        lambda s: s.is_unique).all()


def test_hvgs_scaling_and_pca_come_from_training_donors_only(toy):
    adata, mc = toy
    test_donors = ["d1", "d6"]
    train_cells = ~adata.obs["donor"].isin(test_donors).to_numpy()
    train_rows = ~mc.obs["donor"].isin(test_donors).to_numpy()
    clocks = hallmark_clocks.fit_clocks(adata, mc, train_cells, train_rows, SETTINGS)
    # scramble everything the test donors have: counts of their cells and metacells, scores
    changed = adata.copy()
    rng = np.random.default_rng(5)
    counts = changed.layers["counts"].toarray()
    counts[~train_cells] = rng.poisson(50, counts[~train_cells].shape)
    changed.layers["counts"] = sp.csr_matrix(counts)
    mc2 = pseudobulk.Metacells(mc.plan, mc.obs, mc.counts.copy(), mc.genes, mc.hallmarks.copy())
    mc2.counts[~train_rows] = rng.poisson(500, mc2.counts[~train_rows].shape)
    mc2.hallmarks.loc[~train_rows] = rng.normal(0, 9, mc2.hallmarks.loc[~train_rows].shape)
    again = hallmark_clocks.fit_clocks(changed, mc2, train_cells, train_rows, SETTINGS)
    for kind in hallmark_clocks.CLOCKS:
        a, b = clocks[kind], again[kind]
        assert list(a.hvgs) == list(b.hvgs)
        np.testing.assert_allclose(a.ridge.coef_, b.ridge.coef_, rtol=1e-5, atol=1e-8)
        if a.gene_scaler is not None:
            np.testing.assert_allclose(a.gene_scaler.mean_, b.gene_scaler.mean_, rtol=1e-6)
            np.testing.assert_allclose(a.pca.components_, b.pca.components_, atol=1e-5)
        if a.hallmark_scaler is not None:
            np.testing.assert_allclose(a.hallmark_scaler.mean_, b.hallmark_scaler.mean_)
    # and the same HVG call on all cells would differ: the test has teeth
    everyone = pseudobulk.select_hvgs(changed, np.ones(adata.n_obs, bool), SETTINGS.n_hvg,
                                      span=SETTINGS.hvg_span)
    assert list(everyone) != list(clocks["baseline"].hvgs)


@pytest.mark.parametrize("column", ["batch", "dataset"])
def test_leave_one_out_holds_out_exactly_one_value(toy, monkeypatch, column):
    adata, mc = toy
    seen = []
    real = hallmark_clocks.fit_clocks

    def spy(adata_, mc_, train_cells, train_rows, settings, clocks=hallmark_clocks.CLOCKS):
        seen.append((set(adata_.obs.loc[np.asarray(train_cells), column]),
                     set(mc_.obs.loc[np.asarray(train_rows), column])))
        return real(adata_, mc_, train_cells, train_rows, settings, clocks)

    monkeypatch.setattr(hallmark_clocks, "fit_clocks", spy)
    table = hallmark_clocks.held_out(adata, mc, column, SETTINGS)
    values = set(adata.obs[column])
    assert len(seen) == len(values)
    held = [values - cells for cells, _ in seen]
    assert all(len(h) == 1 for h in held) and set().union(*held) == values
    assert all(cells == rows for cells, rows in seen)
    for value in values:
        rows = table[table[f"held-out {column}"] == value]
        assert len(rows) == 3
        assert (rows["n_test"] == (mc.obs[column] == value).sum()).all()
        assert (rows["n_train"] + rows["n_test"] == len(mc.obs)).all()


def test_clocks_learn_the_planted_age_genes(toy):
    adata, mc = toy
    folds = hallmark_clocks.donor_folds(adata.obs, 4, seed=0)
    predictions, _ = hallmark_clocks.cross_validate(adata, mc, folds, SETTINGS)
    donors = hallmark_clocks.donor_means(predictions)
    for kind in hallmark_clocks.CLOCKS:
        part = donors[donors["clock"] == kind]
        assert np.corrcoef(part["age"], part["predicted"])[0, 1] > 0.9
    clock = hallmark_clocks.fit_clocks(adata, mc, np.ones(adata.n_obs, bool),
                                       np.ones(len(mc.obs), bool), SETTINGS)["baseline"]
    weights = clock_diagnostics.gene_weights(clock)
    top = weights.abs().sort_values(ascending=False).index[:10]
    assert len(set(top) & set(AGE_GENES)) >= 7
    # gene weights reproduce the ridge on the scaled genes (the loadings pull-back is exact)
    scaled = np.clip(clock.gene_scaler.transform(pseudobulk.expression(mc, clock.hvgs)), -10, 10)
    centred = scaled - clock.pca.mean_
    np.testing.assert_allclose(centred @ weights.to_numpy() + clock.ridge.intercept_,
                               hallmark_clocks.predict(clock, mc), rtol=1e-4, atol=1e-3)


def test_bootstrap_from_sums_matches_direct_metrics_and_resamples_donors():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"donor": np.repeat(list("abcdef"), 5),
                          "age": np.repeat([20.0, 30, 40, 50, 60, 70], 5)})
    table["predicted"] = table["age"] + rng.normal(0, 5, len(table))
    sums = hallmark_clocks._sums(table)
    direct = age_metrics(table["age"], table["predicted"])
    from_sums = hallmark_clocks._metrics_from_sums(np.ones((1, 6)) @ sums.to_numpy())
    for m in ("MAE", "RMSE", "R2", "pearson_r"):
        assert from_sums[m][0] == pytest.approx(direct[m])
    ci = hallmark_clocks.bootstrap_ci(table, n_boot=500, seed=1)
    assert ci.loc["low", "MAE"] < direct["MAE"] < ci.loc["high", "MAE"]
    assert ci.equals(hallmark_clocks.bootstrap_ci(table, n_boot=500, seed=1))
    assert len(sums) == 6


def test_near_zero_and_null_diagnostic_count_planted_status():
    coefficients = pd.Series({"a": 10.0, "b": -0.05, "c": 0.4, "d": -3.0, "e": 0.9})
    status = pd.Series({"a": "up", "b": "null", "c": "null", "d": "down", "e": "none"})
    assert list(clock_diagnostics.near_zero(coefficients, 0.05).index) == ["b", "c"]
    table = clock_diagnostics.null_diagnostic(coefficients, status, fractions=(0.01, 0.1))
    assert table["near-zero"].tolist() == [1, 3]
    assert table["of which planted null"].tolist() == [1, 2]
    assert table["AUROC (null vs driven, small |coef|)"].iloc[0] == 1.0


def test_cell_residuals_average_the_metacells_that_drew_a_cell():
    plan = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0]], np.float32))
    residual = clock_diagnostics.cell_residuals(plan, np.array([3.0, 6.0, -1.0]))
    np.testing.assert_allclose(residual[:3], [3.0, (3 + 12) / 3, -1.0])
    assert np.isnan(residual[3])
    assert clock_diagnostics.residual_class(0.2).startswith("Protective")
    assert clock_diagnostics.residual_class(-0.2).startswith("Actionable")


def test_residual_genes_rank_a_planted_program_outside_the_sets(toy):
    _, mc = toy
    # a residual that the planted age genes track, within every dataset and batch
    residual = mc.obs["age"].to_numpy() - mc.obs["age"].mean()
    table = clock_diagnostics.residual_genes(mc, residual, hallmark_genes={"age0", "age1"})
    assert table.loc[table["gene"] == "age0", "in a hallmark set"].item()
    recovery = clock_diagnostics.nomination_recovery(table, set(AGE_GENES[2:]), top=8)
    assert recovery["planted in top 8"] >= 7 and recovery["AUROC"] > 0.95


def test_blocked_dask_sums_equal_in_memory_sums(toy, tmp_path):
    import h5py

    adata, mc = toy
    path = tmp_path / "toy.h5ad"
    adata.write_h5ad(path)
    with h5py.File(path) as f:
        lazy = ad.experimental.read_elem_lazy(f["layers/counts"], chunks=(100, adata.n_vars))
        assert len(lazy.chunks[0]) > 5  # really in blocks
        np.testing.assert_allclose(pseudobulk.sum_counts_blocked(mc.plan, lazy), mc.counts,
                                   rtol=1e-6)
        with pytest.raises(ValueError, match="chunked by rows"):
            pseudobulk.sum_counts_blocked(mc.plan, lazy.rechunk((100, 50)))


def test_fold_hallmark_features_take_control_genes_from_training_cells_only():
    from helpers.hallmarkage import hallmark_scoring

    adata = toy_atlas(seed=2)
    sc_log = adata.copy()
    sc_log.X = np.log1p(sc_log.X.toarray())
    sets = {"age_program": AGE_GENES, "other": [f"g{i}" for i in range(50, 60)]}
    scores = hallmark_scoring.score_gene_sets(sc_log, sets, ctrl_size=20, random_state=0)
    mc = pseudobulk.build(sc_log, scores, k=10, per_unit=4, seed=0)
    everyone = np.ones(sc_log.n_obs, bool)
    again = hallmark_clocks.rescored(sc_log, mc, sets, everyone, ctrl_size=20, seed=0)
    np.testing.assert_allclose(again.hallmarks, mc.hallmarks, rtol=1e-5, atol=1e-6)
    train = (sc_log.obs["donor"] != "d0").to_numpy()
    before = hallmark_clocks.rescored(sc_log, mc, sets, train, ctrl_size=20, seed=0)
    scrambled = sc_log.copy()
    scrambled.X[~train] = np.random.default_rng(5).uniform(0, 9, (int((~train).sum()),
                                                                  scrambled.n_vars))
    after = hallmark_clocks.rescored(scrambled, mc, sets, train, ctrl_size=20, seed=0)
    rows = (mc.obs["donor"] != "d0").to_numpy()
    np.testing.assert_allclose(after.hallmarks[rows], before.hallmarks[rows], rtol=1e-6)
    assert not np.allclose(after.hallmarks[~rows], before.hallmarks[~rows])


def test_probability_features_are_probabilities_fitted_on_training_cells_only():
    from helpers.hallmarkage import hallmark_scoring

    adata = toy_atlas(seed=4)
    adata.X = sp.csr_matrix(np.log1p(adata.X.toarray()))
    sets = {"age_program": AGE_GENES, "other": [f"g{i}" for i in range(50, 60)]}
    scores = hallmark_scoring.score_gene_sets(adata, sets, ctrl_size=20, random_state=0)
    mc = pseudobulk.build(adata, scores, k=10, per_unit=4, seed=0)
    train = (adata.obs["donor"] != "d0").to_numpy()
    settings = hallmark_clocks.Settings(n_hvg=60, n_pcs=5, seed=0)
    before = hallmark_clocks.probability_metacells(adata, mc, sets, train, settings, n_pcs=5)
    assert ((before.hallmarks >= 0) & (before.hallmarks <= 1)).all().all()
    assert list(before.hallmarks.columns) == list(mc.hallmarks.columns)
    scrambled = adata.copy()
    dense = scrambled.X.toarray()
    dense[~train] = np.random.default_rng(3).uniform(0, 4, (int((~train).sum()), dense.shape[1]))
    scrambled.X = sp.csr_matrix(dense)
    after = hallmark_clocks.probability_metacells(scrambled, mc, sets, train, settings, n_pcs=5)
    rows = (mc.obs["donor"] != "d0").to_numpy()
    np.testing.assert_allclose(after.hallmarks[rows], before.hallmarks[rows], rtol=1e-6,
                               atol=1e-9)
    # the age program's probability rises with age across the training metacells
    young = mc.obs["age"].to_numpy() < 45
    prob = before.hallmarks.iloc[:, 0].to_numpy()
    assert prob[rows & ~young].mean() > prob[rows & young].mean()
