"""Published linear clocks: the transform, exact predictions, and no silent imputation."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from helpers.common import clocks
from helpers.common.metrics import age_metrics
from helpers.data import loaders
from tests.conftest import requires_real_data


def test_horvath_inverse_transform_is_log_then_linear():
    x = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(clocks.horvath_inverse_transform(x),
                               [21 * np.exp(-1) - 1, 20.0, 41.0])
    below = clocks.horvath_inverse_transform(-1e-9)
    assert abs(below - 20.0) < 1e-6  # continuous at adult age 20


def _toy_clock(transform="identity", intercept=1.0):
    weights = pd.Series({"cg1": 2.0, "cg2": -1.0})
    return clocks.LinearClock("toy", weights, intercept, transform, {})


def test_predict_age_is_the_weighted_sum():
    betas = pd.DataFrame({"cg2": [0.5, 0.0], "cg1": [0.25, 1.0], "cg9": [0.3, 0.3]},
                         index=["s1", "s2"])
    predicted = clocks.predict_age(_toy_clock(), betas)
    np.testing.assert_allclose(predicted, [1 + 0.5 - 0.5, 1 + 2.0])
    assert list(predicted.index) == ["s1", "s2"]


def test_missing_features_are_reported_not_imputed():
    betas = pd.DataFrame({"cg1": [0.5]})
    with pytest.raises(clocks.MissingFeaturesError, match=r"1 of 2 features \(CpGs\).*cg2"):
        clocks.predict_age(_toy_clock(), betas)
    cover = clocks.clock_coverage(_toy_clock(), betas.columns)
    assert cover["n_missing"] == 1 and cover["share_missing"] == 0.5


def test_age_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 100, 50)
    p = y + rng.normal(0, 5, 50)
    m = age_metrics(y, p)
    assert m["MAE"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert m["RMSE"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert m["R2"] == pytest.approx(skm.r2_score(y, p))
    assert m["MdAE"] == pytest.approx(skm.median_absolute_error(y, p))
    with pytest.raises(ValueError, match="must be equal"):
        age_metrics(y, p[:-1])


@requires_real_data
def test_horvath2013_on_real_gse30870_gives_mae_10_48():
    adata = loaders.load_gse30870()
    clock = clocks.load_clock("horvath2013")
    assert len(clock.weights) == 353 and clock.intercept == 0.696
    predicted = clocks.predict_age(clock, adata.to_df())
    scores = age_metrics(adata.obs["age"], predicted)
    assert round(scores["MAE"], 2) == 10.48
    newborns = adata.obs["age"] == 0
    assert np.all(np.abs(predicted[newborns]) < 1.0)


@requires_real_data
def test_phenoage_intercept_comes_from_its_file():
    clock = clocks.load_clock("phenoage2018")
    assert clock.intercept == pytest.approx(60.664)
    assert "intercept" not in clock.weights.index


def test_a_gene_feature_clock_uses_the_same_path_and_speaks_of_features(tmp_path):
    table = tmp_path / "signature.tsv"
    table.write_text("gene\tcoefficient\n(Intercept)\t12.5\nCDKN2A\t3.0\nLRRN3\t-2.0\n"
                     "CD248\t-1.5\n")
    clock = clocks.read_linear_clock(table, "toy signature", "gene", "coefficient",
                                     intercept_row="(Intercept)", feature="gene", unit="log")
    assert clock.intercept == 12.5 and clock.features == "genes"
    log_fpkm = pd.DataFrame({"CDKN2A": [4.0, 6.0], "LRRN3": [5.0, 2.0], "CD248": [1.0, 1.0],
                             "ACTB": [12.0, 12.0]}, index=["young", "old"])
    predicted = clocks.predict_age(clock, log_fpkm)
    np.testing.assert_allclose(predicted, [12.5 + 12 - 10 - 1.5, 12.5 + 18 - 4 - 1.5])
    report = clocks.missing_feature_report(clock, log_fpkm.drop(columns="LRRN3"))
    assert report["feature"] == "gene" and report["absent"] == ["LRRN3"]
    with pytest.raises(clocks.MissingFeaturesError, match=r"1 of 3 features \(genes\)"):
        clocks.apply_clock(clock, log_fpkm.drop(columns="LRRN3"))
    filled, _ = clocks.apply_clock(clock, log_fpkm.drop(columns="LRRN3"), "reference",
                                   reference=pd.Series({"LRRN3": 3.5}))
    np.testing.assert_allclose(filled, [12.5 + 12 - 7 - 1.5, 12.5 + 18 - 7 - 1.5])
    with pytest.raises(ValueError, match="values up to 64.*look unlogged"):
        clocks.predict_age(clock, 2 ** log_fpkm)


def test_a_beta_clock_refuses_m_values_percentages_and_infinities():
    clock = _toy_clock()
    for bad, what in ((pd.DataFrame({"cg1": [2.3], "cg2": [-1.1]}), "outside"),
                      (pd.DataFrame({"cg1": [55.0], "cg2": [40.0]}), "outside"),
                      (pd.DataFrame({"cg1": [np.inf], "cg2": [0.5]}), "infinite")):
        with pytest.raises(ValueError, match=f"toy: .*{what}"):
            clocks.predict_age(clock, bad)


def test_a_clock_table_with_a_bad_field_names_file_and_field(tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("gene,weight\nA,1\nB,x\n")
    with pytest.raises(clocks.DataFormatError, match=r"bad.csv: field 'weight' is not a number"):
        clocks.read_linear_clock(table, "bad", "gene", "weight")
    with pytest.raises(clocks.DataFormatError, match=r"bad.csv: missing field 'coef'"):
        clocks.read_linear_clock(table, "bad", "gene", "coef")
