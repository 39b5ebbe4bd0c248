"""HallmarkAge on bulk or per-donor pseudobulk samples: scores equal scanpy's ``score_genes``
on the same matrix, the three ridge clocks cross-validate over donors, and nothing from
held-out samples changes a fitted scaler, PCA, HVG set, control gene or coefficient."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.common import splits
from helpers.hallmarkage import hallmark_clocks, hallmark_scoring, pseudobulk


def bulk(n_donors=40, n_genes=300, seed=0):
    """One log-scale profile per donor: a 'senescence' set of 12 genes rises with age."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 85, n_donors)
    base = rng.uniform(1, 8, n_genes)
    values = base + rng.normal(0, 0.4, (n_donors, n_genes))
    values[:, :12] += (age[:, None] - 50) / 25
    genes = [f"G{i}" for i in range(n_genes)]
    ids = [f"donor{i}" for i in range(n_donors)]
    obs = pd.DataFrame({"donor": ids, "age": age}, index=ids)
    sets = {"senescence": genes[:12], "null": genes[100:112], "other": genes[200:215]}
    profiles = pseudobulk.Profiles(obs, pd.DataFrame(np.clip(values, 0, None), ids, genes),
                                   pd.DataFrame(index=ids))
    return profiles, sets


def test_bulk_scores_equal_scanpy_score_genes():
    profiles, sets = bulk()
    ours = profiles.with_scores(sets, seed=3).hallmarks
    adata = ad.AnnData(profiles.values.to_numpy(), obs=profiles.obs[[]],
                       var=pd.DataFrame(index=profiles.values.columns))
    reference = hallmark_scoring.score_with_scanpy(adata, sets, prefix="s", random_state=3)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), atol=1e-10)


def test_profiles_refuse_counts_and_a_missing_age():
    profiles, _ = bulk()
    with pytest.raises(ValueError, match="expected log-scale expression"):
        pseudobulk.Profiles(profiles.obs, 2 ** (profiles.values * 3), profiles.hallmarks)
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['age'\]"):
        pseudobulk.Profiles(profiles.obs.drop(columns="age"), profiles.values,
                            profiles.hallmarks)


def test_ridge_clocks_cross_validate_over_donors_on_bulk_profiles():
    profiles, sets = bulk()
    folds = splits.cv_folds(profiles.obs, n_splits=5, by=(), group="donor", seed=0)
    settings = hallmark_clocks.Settings(n_hvg=100, n_pcs=10, seed=0)
    predictions, penalties = hallmark_clocks.cross_validate_profiles(profiles, sets, folds,
                                                                     settings)
    assert (predictions.groupby("clock").size() == len(profiles.obs)).all()
    assert len(penalties) == 5 * 3
    mae = (predictions["predicted"] - predictions["age"]).abs().groupby(
        predictions["clock"]).mean()
    spread = (profiles.obs["age"] - profiles.obs["age"].mean()).abs().mean()
    assert mae["hallmark"] < 0.6 * spread  # the planted senescence set carries the age signal


def test_held_out_samples_change_no_fitted_part():
    profiles, sets = bulk()
    settings = hallmark_clocks.Settings(n_hvg=100, n_pcs=10, seed=0)
    train = np.arange(len(profiles.obs)) % 4 != 0
    scrambled_values = profiles.values.copy()
    rng = np.random.default_rng(9)
    scrambled_values.loc[~train] = rng.uniform(0, 12, scrambled_values.loc[~train].shape)
    obs = profiles.obs.copy()
    obs.loc[~train, "age"] = 999.0
    scrambled = pseudobulk.Profiles(obs, scrambled_values, profiles.hallmarks)
    first, scored_a = hallmark_clocks.fit_profile_clocks(profiles, sets, train, settings)
    second, scored_b = hallmark_clocks.fit_profile_clocks(scrambled, sets, train, settings)
    for kind in hallmark_clocks.CLOCKS:
        a, b = first[kind], second[kind]
        assert list(a.hvgs) == list(b.hvgs)
        np.testing.assert_allclose(a.ridge.coef_, b.ridge.coef_)
        if a.pca is not None:
            np.testing.assert_allclose(a.gene_scaler.mean_, b.gene_scaler.mean_)
            np.testing.assert_allclose(a.pca.components_, b.pca.components_)
        if a.hallmark_scaler is not None:
            np.testing.assert_allclose(a.hallmark_scaler.mean_, b.hallmark_scaler.mean_)
    # training samples' scores (control genes and bins from training samples) are unchanged
    np.testing.assert_allclose(scored_a.hallmarks.loc[train], scored_b.hallmarks.loc[train])


def test_metacells_refuse_a_layer_that_is_not_counts():
    import scipy.sparse as sp

    profiles, _ = bulk(n_donors=6, n_genes=40)
    cells = ad.AnnData(sp.csr_matrix(profiles.values.to_numpy()),
                       obs=profiles.obs.assign(dataset="d", batch="b"),
                       var=pd.DataFrame(index=profiles.values.columns))
    cells.layers["counts"] = cells.X.copy()  # log values, not counts
    with pytest.raises(ValueError, match="metacells: layer 'counts': expected read counts"):
        pseudobulk.build(cells, pd.DataFrame(index=cells.obs_names), k=2, per_unit=1)


def test_age_association_removes_group_means_before_testing():
    age = pd.Series([20.0, 40, 60, 80, 20, 40, 60, 80])
    tissue = pd.Series(["a"] * 4 + ["b"] * 4)
    scores = pd.DataFrame({"rises": [1.0, 2, 3, 4, 11, 12, 13, 14],
                           "tissue_only": [0.0, 1, 0, 1, 10, 11, 10, 11]})
    result = hallmark_scoring.age_association(scores, age, within=tissue)
    assert result.loc["rises", "rho"] == pytest.approx(1.0)
    assert abs(result.loc["tissue_only", "rho"]) < 0.5
    assert (result["fdr"] >= result["p"]).all()


def test_mean_age_out_of_fold_never_uses_the_fold_itself():
    obs = pd.DataFrame({"age": [10.0, 20, 30, 40]}, index=list("abcd"))
    folds = pd.Series([0, 0, 1, 1], index=list("abcd"))
    assert hallmark_clocks.mean_age_out_of_fold(obs, folds).tolist() == [35.0, 35, 15, 15]
