"""The real multimodal cohort: shared spaces without imputation, prenatal samples kept out,
library sizes over one gene list, fold strata that pool small tissues, the decade rounding and
the fold-by-fold comparison."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.precious1gpt import real_cohort


def _obs(n, age, tissue="Brain", modality="methylation"):
    index = [f"{tissue}{i}" for i in range(n)]
    return real_cohort.sample_table(pd.DataFrame({"age": age}, index=index), tissue, tissue,
                                    modality, "exact")


def test_shared_space_is_what_every_dataset_measures_never_imputed():
    a = pd.DataFrame(np.ones((2, 3)), columns=["G1", "G2", "G3"], index=["a1", "a2"])
    b = pd.DataFrame(np.ones((2, 2)), columns=["G3", "G1"], index=["b1", "b2"])
    shared = real_cohort.shared_columns([a, b])
    assert list(shared) == ["G1", "G3"]
    parts = [real_cohort.Part("A", a, _obs(2, [1.0, 2.0], "A")),
             real_cohort.Part("B", b, _obs(2, [3.0, 4.0], "B"))]
    parts[0].obs.index, parts[1].obs.index = a.index, b.index
    data = real_cohort.clock_data(parts, {"methylation": shared})
    assert list(data.values["methylation"].columns) == ["G1", "G3"]
    assert not data.values["methylation"].isna().any().any()
    table = real_cohort.coverage(parts, {"methylation": shared})
    assert table["genes with a value"].tolist() == [3, 2]
    assert table["in the shared space"].tolist() == [2, 2]


def test_sample_table_refuses_a_missing_age_naming_the_dataset():
    with pytest.raises(ValueError, match="GSEX: every sample needs an age"):
        real_cohort.sample_table(pd.DataFrame({"age": [1.0, np.nan]}, index=["a", "b"]),
                                 "GSEX", "Brain", "methylation", "exact")
    with pytest.raises(ValueError, match="age_known"):
        real_cohort.sample_table(pd.DataFrame({"age": [1.0]}, index=["a"]), "GSEX", "Brain",
                                 "methylation", "rounded")


def test_methylation_part_keeps_prenatal_samples_out():
    ages = np.array([-0.4, -0.38, 0.5, 30.0, 61.0])
    adata = ad.AnnData(X=np.full((5, 2), 0.5, dtype=np.float32),
                       obs=pd.DataFrame({"age": ages}, index=[f"s{i}" for i in range(5)]),
                       var=pd.DataFrame(index=["cg1", "cg2"]))
    part = real_cohort.methylation_part("GSEX", adata, "Brain", "cpg")
    assert list(part.obs.index) == ["s2", "s3", "s4"]
    assert (part.obs["age"] >= 0).all()
    assert part.obs["age_bracketed"].tolist() == [5.0, 35.0, 65.0]
    with pytest.raises(ValueError, match="probe map"):
        real_cohort.methylation_part("GSEX", adata, "Brain", "gene")


def test_log_cpm_sums_every_library_over_the_same_genes():
    small = pd.DataFrame([[10, 30]], columns=["A", "B"], index=["m1"], dtype=float)
    wide = pd.DataFrame([[10, 30, 960]], columns=["A", "B", "C"], index=["s1"], dtype=float)
    genes = real_cohort.shared_columns([small, wide])
    logged = real_cohort.log_cpm_on({"small": small, "wide": wide}, genes)
    np.testing.assert_allclose(logged["small"].to_numpy(), logged["wide"].to_numpy())
    np.testing.assert_allclose(logged["wide"].loc["s1", "A"], np.log2(250_000 + 1))


def test_fold_strata_pool_small_tissues_into_the_smallest_large_one():
    obs = pd.concat([_obs(20, np.arange(20.0), "Brain"), _obs(6, np.arange(6.0), "Blood"),
                     _obs(3, [50.0, 55.0, 60.0], "Liver"),
                     _obs(8, np.full(8, 45.0), "Muscle", "expression")])
    strata = real_cohort.fold_strata(obs, n_splits=5)
    assert set(strata) == {"methylation|Brain", "methylation|Blood+Liver", "expression|Muscle"}
    assert (strata.value_counts() >= 5).all()
    with pytest.raises(ValueError, match="no tissue has 10 samples"):
        real_cohort.fold_strata(obs[obs["modality"] == "expression"], n_splits=10)


def test_decade_midpoints_and_the_floor_they_put_on_the_error():
    ages = pd.Series([43.2, 40.0, 49.99, 0.3, 97.0])
    assert real_cohort.decade_midpoint(ages).tolist() == [45.0, 45.0, 45.0, 5.0, 95.0]
    spread = pd.Series(np.random.default_rng(0).uniform(40, 50, 20_000))
    assert real_cohort.bracket_floor(spread) == pytest.approx(2.5, abs=0.05)
    with pytest.raises(ValueError, match="postnatal"):
        real_cohort.decade_midpoint(pd.Series([-0.4]))


def test_rounding_cost_scores_both_label_kinds_against_exact_ages():
    rows = pd.DataFrame({"labels": ["exact ages"] * 2 + ["decade midpoints"] * 2,
                         "repeat": 0, "fold": [0, 1, 0, 1],
                         "predicted": [41.0, 50.0, 45.0, 45.0],
                         "age_exact": [40.0, 52.0, 40.0, 52.0]})
    cost = real_cohort.rounding_cost(rows).set_index(["labels", "fold"])["MAE"]
    assert cost[("exact ages", 0)] == 1.0 and cost[("decade midpoints", 1)] == 7.0
    paired = real_cohort.paired_folds(real_cohort.rounding_cost(rows), "labels",
                                      "decade midpoints", "exact ages")
    assert paired == {"folds": 2, "mean_difference": pytest.approx(4.5),
                      "sd_difference": pytest.approx(np.std([4.0, 5.0], ddof=1)),
                      "first_lower": 0}
    with pytest.raises(ValueError, match="needs both"):
        real_cohort.paired_folds(real_cohort.rounding_cost(rows), "labels", "CpG", "gene")
