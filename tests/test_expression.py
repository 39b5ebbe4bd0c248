"""Expression processing: symbols, CPM/TPM, quantile normalisation and ComBat."""

import numpy as np
import pandas as pd
import pytest

from helpers.common import expression

GENES = pd.DataFrame({
    "geneSymbol": ["A", "B", "B", "C", "D"],
    "geneType": ["protein coding", "protein coding", "protein coding", "lincRNA",
                 "protein coding"],
}, index=["ENSG1.1", "ENSG2.1", "ENSG2_PAR_Y", "ENSG3.2", "ENSG4.1"])


def test_symbols_keep_protein_coding_and_the_stronger_duplicate():
    counts = pd.DataFrame([[1, 0, 5, 7, 2, 9], [3, 0, 7, 1, 2, 9]],
                          columns=["ENSG1.1", "ENSG2_PAR_Y", "ENSG2.1", "ENSG3.2", "ENSG4.1",
                                   "ENSG9.9"])
    renamed, report = expression.to_gene_symbols(counts, GENES)
    assert list(renamed.columns) == ["A", "B", "D"]
    assert list(renamed["B"]) == [5, 7]  # ENSG2.1, not the all-zero PAR_Y copy
    assert report.loc["ENSG2_PAR_Y", "reason"] == "duplicated symbol, lower mean count"
    assert report.loc["ENSG3.2", "reason"] == "not protein coding"
    assert report.loc["ENSG9.9", "reason"] == "id not in the gene table"
    assert report["kept"].sum() == 3


def test_cpm_and_tpm_sum_to_a_million():
    counts = pd.DataFrame([[10, 30, 60], [1, 1, 8]], columns=list("xyz"), dtype=float)
    assert np.allclose(expression.cpm(counts).sum(axis=1), 1e6)
    lengths = pd.Series({"x": 1000, "y": 2000, "z": 500})
    tpm = expression.tpm(counts, lengths)
    assert np.allclose(tpm.sum(axis=1), 1e6)
    assert tpm.loc[0, "z"] / tpm.loc[0, "x"] == pytest.approx((60 / 500) / (10 / 1000))
    with pytest.raises(ValueError, match="no positive length.*'z'"):
        expression.tpm(counts, lengths.drop("z"))
    with pytest.raises(ValueError, match="no reads"):
        expression.cpm(counts * 0)


def test_quantile_normalisation_gives_identical_sample_distributions():
    rng = np.random.default_rng(0)
    values = pd.DataFrame(rng.gamma(2.0, size=(6, 300)) * rng.uniform(1, 5, size=(6, 1)))
    normalised = expression.quantile_normalise(values)
    ordered = np.sort(normalised.to_numpy(), axis=1)
    assert np.allclose(ordered, ordered[0])
    # the target is the mean of the sorted samples; each sample keeps its ranks
    assert np.allclose(ordered[0], np.sort(values.to_numpy(), axis=1).mean(axis=0))
    assert (normalised.rank(axis=1).to_numpy() == values.rank(axis=1).to_numpy()).all()


def test_combat_removes_planted_batch_variance_but_keeps_the_protected_signal():
    rng = np.random.default_rng(1)
    n, genes = 240, 50
    batch = pd.Series(np.repeat(["b1", "b2", "b3"], n // 3))
    age = pd.Series(rng.uniform(20, 80, n))
    signal = np.outer(age, rng.normal(0, 0.05, genes))
    shift = {"b1": 0.0, "b2": 2.0, "b3": -1.5}
    planted = np.outer(batch.map(shift), rng.uniform(0.5, 1.5, genes))
    values = pd.DataFrame(signal + planted + rng.normal(0, 1, (n, genes)))
    before = expression.variance_explained(values, batch).mean()
    corrected = expression.combat(values, batch, covariates=pd.DataFrame({"age": age}))
    after = expression.variance_explained(corrected, batch).mean()
    assert before > 0.3 and after < 0.02
    kept = np.corrcoef(corrected.to_numpy().T @ age.to_numpy(), signal.T @ age.to_numpy())[0, 1]
    assert kept > 0.95


def test_log_refuses_negative_values():
    with pytest.raises(ValueError, match="negative"):
        expression.log_expression(pd.DataFrame([[1.0, -1.0]]))



def test_quantile_reference_is_qnorm_target_and_maps_new_samples_onto_it():
    import qnorm

    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.lognormal(2, 1, (6, 50)), columns=[f"g{i}" for i in range(50)])
    reference = expression.quantile_reference(train)
    # qnorm's own normalisation gives every training sample exactly this distribution
    normalised = qnorm.quantile_normalize(train.T, axis=1).T
    np.testing.assert_allclose(np.sort(normalised.to_numpy(), axis=1)[0], reference)
    # a new platform on another scale lands on the training scale, rank for rank
    new = np.exp(train.iloc[:2] * 0.3) + 5
    mapped = expression.quantile_normalise(new, target=reference)
    for _, row in mapped.iterrows():
        np.testing.assert_allclose(np.sort(row.to_numpy()), reference)
    assert (mapped.rank(axis=1).to_numpy() == new.rank(axis=1).to_numpy()).all()


def test_quantile_target_of_another_length_is_interpolated():
    reference = np.linspace(0.0, 10.0, 101)
    values = pd.DataFrame([[3.0, 1.0, 2.0]], columns=["a", "b", "c"])
    mapped = expression.quantile_normalise(values, target=reference)
    assert mapped.loc[0].tolist() == [10.0, 0.0, 5.0]
    with pytest.raises(ValueError, match="finite 1-d distribution"):
        expression.quantile_normalise(values, target=[1.0, np.nan])


def test_units_are_checked_both_ways():
    counts = pd.DataFrame([[0, 120, 4000], [3, 80, 9000]], dtype=float)
    logged = expression.log_expression(expression.cpm(counts))
    with pytest.raises(ValueError, match="look logged already"):
        expression.log_expression(logged)
    assert expression.log_expression(logged, check_units=False).shape == logged.shape
    with pytest.raises(ValueError, match="expected read counts .*log-scale values"):
        expression.cpm(logged)
    with pytest.raises(ValueError, match="expected read counts, found negative"):
        expression.require_counts(counts - 10)
    with pytest.raises(ValueError, match="expected log-scale expression"):
        expression.require_log_scale(counts)
    expression.require_log_scale(logged)
    expression.require_counts(counts)


def _batched(seed=0, n=60, genes=8, tissues=False):
    rng = np.random.default_rng(seed)
    batch = pd.Series(np.repeat(["b1", "b2", "b3"], n // 3), index=[f"s{i}" for i in range(n)])
    shift = batch.map({"b1": 0.0, "b2": 1.5, "b3": -1.0}).to_numpy()[:, None]
    scale = batch.map({"b1": 1.0, "b2": 1.6, "b3": 0.7}).to_numpy()[:, None]
    values = pd.DataFrame(5 + shift + scale * rng.normal(size=(n, genes)), index=batch.index,
                          columns=[f"G{g}" for g in range(genes)])
    return values, batch


def test_batch_map_reproduces_scanpys_combat_on_the_training_samples():
    values, batch = _batched()
    corrected = expression.combat(values, batch)  # scanpy: the reference
    mapping = expression.batch_map(values, corrected, batch)
    np.testing.assert_allclose(expression.apply_batch_map(mapping, values, batch), corrected,
                               atol=1e-8)
    with pytest.raises(ValueError, match=r"batch\(es\) \['b9'\] have no training samples"):
        expression.apply_batch_map(mapping, values.iloc[:2], pd.Series("b9", values.index[:2]))


def test_training_preparation_ignores_the_held_out_samples():
    from helpers.precious1gpt import multimodal

    values, batch = _batched(seed=1)
    obs = pd.DataFrame({"batch": batch, "tissue": "Muscle"})
    train = values.index[::2].append(values.index[1::4])
    held = values.index.difference(train)
    before = multimodal.prepare_expression_on(values, obs, train)
    scrambled = values.copy()
    scrambled.loc[held] = np.random.default_rng(9).normal(50, 10, (len(held), values.shape[1]))
    after = multimodal.prepare_expression_on(scrambled, obs, train)
    # the training samples' prepared values (ComBat estimates, quantile target) do not move
    pd.testing.assert_frame_equal(before.loc[train], after.loc[train])
    # while the cohort-wide preparation (the paper's order) lets held-out values move them
    cohort = multimodal.prepare_expression(values, obs)
    cohort_after = multimodal.prepare_expression(scrambled, obs)
    assert not np.allclose(cohort.loc[train], cohort_after.loc[train])
