"""Hallmark classifiers see only training donors; the simulated atlas plants what it says."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.hallmarkage import (
    atlas_simulator,
    hallmark_classifiers,
    hallmark_scoring,
    hallmark_sets,
)
from tests.conftest import requires_real_data


@pytest.fixture(scope="module")
def small_atlas():
    from helpers.common import expression

    log_cpm, _, _ = expression.real_muscle_log_cpm()
    frameworks = hallmark_sets.load_frameworks()
    design = atlas_simulator.load_design()
    return atlas_simulator.simulate(log_cpm, frameworks, design,
                                    {"n_cells": 3000, "n_genes": 1200}, seed=1), frameworks


def test_donor_split_is_disjoint_stratified_and_seeded():
    obs = pd.DataFrame({"donor": [f"D{i}" for i in range(17)] * 3,
                        "age_group": (["young"] * 8 + ["old"] * 9) * 3})
    train, test = hallmark_classifiers.donor_split(obs, 0.3, seed=4)
    assert not set(train) & set(test) and len(train) + len(test) == 17
    young = {f"D{i}" for i in range(8)}
    assert set(test) & young and set(test) - young
    assert hallmark_classifiers.donor_split(obs, 0.3, seed=4) == (train, test)


@requires_real_data
def test_atlas_follows_the_design(small_atlas):
    atlas, _ = small_atlas
    obs = atlas.adata.obs
    assert atlas.adata.n_obs == 3000 and atlas.adata.n_vars == 1200
    assert obs["donor"].nunique() == 17 and obs["dataset"].nunique() == 7
    assert set(obs["batch"]) == {"cells", "nuclei", "myonuclei"}
    design = atlas_simulator.load_design()
    immune = obs[obs["dataset"] == "SKM_immune_human_2023-06-22"]
    assert immune["donor"].nunique() == 12
    assert (immune["age_group"] == "old").mean() == pytest.approx(14337 / 20321, abs=0.01)
    assert set(obs.loc[obs["dataset"] == "SKM_myonuclei_human_2024-04-14", "batch"]) == {
        "myonuclei"}
    assert obs["age"].between(15, 75).all() and len(design["donors"]) == 17
    counts = atlas.adata.layers["counts"]
    assert counts.dtype == np.float32 and (counts.data == np.round(counts.data)).all()


@requires_real_data
def test_planted_programs_are_recovered_and_nulls_are_not_planted(small_atlas):
    atlas, frameworks = small_atlas
    adata = atlas.adata
    report = hallmark_sets.detection_report(frameworks, adata.var_names)
    scores = hallmark_scoring.score_gene_sets(adata, hallmark_sets.kept_gene_sets(report))
    truth = atlas_simulator.hallmark_truth(report, atlas.programs,
                                           atlas_simulator.load_design()["null_hallmarks"])
    planted_genes = set(";".join(atlas.programs["genes"]).split(";"))
    for row in truth[truth["status"] == "null"].itertuples():
        assert not set(frameworks[row.framework][row.hallmark]) & planted_genes
    recovery = atlas_simulator.truth_recovery(atlas_simulator.age_effects(scores, adata.obs),
                                              truth)
    planted = recovery[recovery["status"].isin(["up", "down"])]
    assert len(planted) >= 8 and planted["recovered"].mean() >= 0.9
    nulls = recovery[recovery["status"] == "null"]
    assert nulls["effect_size"].abs().median() < planted["effect_size"].abs().median() / 3


@requires_real_data
def test_classifiers_are_evaluated_only_on_unseen_donors(small_atlas):
    atlas, frameworks = small_atlas
    adata = atlas.adata
    sets = dict(list(hallmark_sets.kept_gene_sets(
        hallmark_sets.detection_report(frameworks, adata.var_names)).items())[:3])
    scores = hallmark_scoring.score_gene_sets(adata, sets)
    train_donors, test_donors = hallmark_classifiers.donor_split(adata.obs, 0.3, seed=0)
    train = adata.obs["donor"].isin(train_donors).to_numpy()
    features, _ = hallmark_classifiers.gene_pca_features(adata, train, n_hvg=500, n_pcs=10)
    # features of training cells do not depend on test donors' data
    changed = adata.copy()
    changed.X = sp.diags((train).astype(np.float32)) @ changed.X  # test donors' data zeroed
    again, _ = hallmark_classifiers.gene_pca_features(changed, train, n_hvg=500, n_pcs=10)
    assert np.allclose(features[train], again[train], atol=1e-4)
    metrics, probabilities = hallmark_classifiers.train_classifiers(
        features, scores, train, models=("logistic",))
    column = scores.columns[0]
    q20, q80 = np.quantile(scores.loc[train, column], [0.2, 0.8])
    test_values = scores.loc[~train, column]
    expected_test = int(((test_values > q80) | (test_values < q20)).sum())
    assert metrics.loc[0, "test_cells"] == expected_test
    assert metrics["auroc"].between(0.5, 1).all()
    assert probabilities.shape == (adata.n_obs, 3)
    donor_level = hallmark_classifiers.donor_probabilities(probabilities, adata.obs["donor"])
    assert donor_level.shape == (17, 3)
