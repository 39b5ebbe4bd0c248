"""The real-anchored Precious1GPT simulator: seed-deterministic, planted truth recoverable,
the paper's cohort structure, and the evaluation splits."""

import numpy as np
import pandas as pd
import pytest

from helpers.common import expression, splits
from helpers.precious1gpt import cohorts, simulator
from tests.conftest import requires_real_data

SIZES = {"n_methylation": 400, "n_expression": 1500, "n_genes": 600, "n_per_disease_arm": 30,
         "ipsc_replicates": 2, "fetal_replicates": 1}


@pytest.fixture(scope="module")
def inputs():
    design = cohorts.load_design()
    return (*simulator.real_inputs(design), design)


@pytest.fixture(scope="module")
def simulated(inputs):
    return simulator.simulate(*inputs, SIZES, seed=7)


@requires_real_data
def test_simulator_is_seed_deterministic(inputs, simulated):
    again = simulator.simulate(*inputs, SIZES, seed=7)
    other = simulator.simulate(*inputs, SIZES, seed=8)
    assert np.array_equal(again.methylation.X, simulated.methylation.X)
    assert np.array_equal(again.expression.X, simulated.expression.X)
    assert again.truth.equals(simulated.truth)
    assert not np.array_equal(other.methylation.X, simulated.methylation.X)


@requires_real_data
def test_planted_age_genes_correlate_with_age_far_more_than_the_rest(simulated):
    truth = simulated.truth
    for adata in (simulated.methylation, simulated.expression):
        r = simulator.age_correlation(adata)
        age_genes = truth.loc[r.index, "is_age_gene"].to_numpy(bool)
        assert r[age_genes].mean() > 2.5 * r[~age_genes].mean(), adata.uns["modality"]


@requires_real_data
def test_methylation_and_expression_of_shared_age_genes_move_oppositely(simulated):
    truth = simulated.truth
    shared = truth[truth["is_age_gene"] & truth["in_expression"]]
    assert len(shared) > 20
    assert (np.sign(shared["logit_slope"]) == -np.sign(shared["expression_slope"])).all()


@requires_real_data
def test_cohort_structure_follows_the_paper(simulated):
    meth, expr = simulated.methylation.obs, simulated.expression.obs
    assert set(meth["tissue"]) == set(cohorts.tissue_mix("methylation").index)
    assert set(expr["tissue"]) == set(cohorts.tissue_mix("expression").index)
    assert meth["tissue"].value_counts().idxmax() == "Blood"
    assert meth["age"].between(0, 110).all() and (meth["age"] < 18).any()
    assert expr["age"].between(20, 80).all()
    midpoint = expr["age_bracket"].str[:2].astype(int) + 5.0
    assert np.array_equal(midpoint.to_numpy(), expr["age_reported"].to_numpy())
    assert (expr["age"] - expr["age_reported"]).abs().max() <= 5
    assert 0 <= float(np.asarray(simulated.methylation.X).min()) and \
        float(np.asarray(simulated.methylation.X).max()) <= 1


@requires_real_data
def test_planted_pathways_diseases_ipsc_and_fetal_truth(simulated):
    truth = simulated.truth
    planted = truth[truth["planted_pathway"] != ""]
    assert planted["is_age_gene"].all() and len(planted) >= 20
    for name, adata in simulated.diseases.items():
        genes = truth.index[truth[f"effect_{name}"] != 0]
        assert "APLNR" in genes
        assert ("IL23R" in genes) == (name != "idiopathic_pulmonary_fibrosis")
        case = adata.obs["case"].to_numpy() == 1
        diff = np.asarray(adata[:, genes].X)[case].mean(0) - np.asarray(
            adata[:, genes].X)[~case].mean(0)
        expected = np.sign(truth.loc[genes, f"effect_{name}"].to_numpy())
        assert (np.sign(diff) == expected).mean() > 0.8, name
    ipsc = simulated.ipsc.obs
    assert ipsc.groupby("day")["epigenetic_age"].mean().is_monotonic_decreasing
    assert ipsc.loc[ipsc["stage"] == "iPSC", "epigenetic_age"].eq(0).all()
    fetal = simulated.fetal.obs
    assert fetal["age"].lt(0).all() and fetal.groupby("weeks")["age"].mean().is_monotonic_increasing


@requires_real_data
def test_combat_removes_the_planted_batches_and_keeps_tissue(simulated, tmp_path):
    # as chapters read it (from disk), at the quick profile's size: 500 samples, 27 tissues
    saved = simulator.Cohorts.load(simulated.save(tmp_path / "c")).expression[:500]
    values, obs = saved.to_df(), saved.obs
    corrected = expression.combat(values, obs["batch"], covariates=obs[["tissue"]])
    before = expression.variance_explained(values, obs["batch"]).median()
    after = expression.variance_explained(corrected, obs["batch"]).median()
    assert before > 0.05 and after < 0.01
    assert (expression.variance_explained(corrected, obs["tissue"]).median()
            >= expression.variance_explained(values, obs["tissue"]).median())


@requires_real_data
def test_cohorts_survive_a_save_and_load(simulated, tmp_path):
    loaded = simulator.Cohorts.load(simulated.save(tmp_path / "cohorts"))
    assert np.array_equal(loaded.methylation.X, simulated.methylation.X)
    assert list(loaded.diseases) == list(simulated.diseases)  # design order kept
    assert loaded.truth["is_age_gene"].equals(simulated.truth["is_age_gene"])
    assert loaded.pathways["reactome_id"].tolist() == simulated.pathways["reactome_id"].tolist()


def test_allocation_respects_shares_and_minimum():
    counts = cohorts.allocate(100, pd.Series({"a": 0.9, "b": 0.08, "c": 0.02}), minimum=5)
    assert counts.sum() == 100 and counts.min() >= 5 and counts["a"] > counts["b"]
    with pytest.raises(ValueError, match="cannot give 3 groups 5 each"):
        cohorts.allocate(10, pd.Series({"a": 1, "b": 1, "c": 1}), minimum=5)


def test_unknown_profile_or_size_is_an_error():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        simulator.profile_sizes("huge")
    with pytest.raises(ValueError, match="n_cells"):
        simulator.profile_sizes("quick", n_cells=3)


def _sheet(n_per=10):
    tissues = np.repeat(["Blood", "Brain", "Lung"], n_per)
    return pd.DataFrame({"tissue": tissues, "modality": np.tile(["methylation", "expression"],
                                                                 len(tissues) // 2)},
                        index=[f"s{i}" for i in range(len(tissues))])


def test_holdout_is_stratified_by_tissue_and_seeded():
    obs = _sheet()
    train, test = splits.holdout_split(obs, seed=3)
    assert len(test) == 6 and not set(train) & set(test)
    assert (obs.loc[test, "tissue"].value_counts() == 2).all()
    assert list(splits.holdout_split(obs, seed=3)[1]) == list(test)


def test_cv_folds_stratify_tissue_and_modality():
    obs = _sheet(n_per=20)
    folds = splits.cv_folds(obs, n_splits=5, seed=0)
    table = pd.crosstab(splits.strata(obs, ("tissue", "modality")), folds)
    assert (table == 2).all().all()
    with pytest.raises(ValueError, match=r"too few in Blood\|expression \(1\)"):
        splits.cv_folds(obs.iloc[[0, 1, 2, 3, 4, 6, 8, 10, 12, 14]].assign(
            modality=["expression"] + ["methylation"] * 9), n_splits=5)
