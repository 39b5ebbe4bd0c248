"""The real-fetal validation: clocks are fitted on postnatal samples only, and a planted
developmental trend is recovered."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.common.clocks import MissingFeaturesError
from helpers.precious1gpt import real_fetal


def brains(seed=0, n_post=80, n_pre=20, n_cpg=30):
    """Postnatal (0-90 y) and prenatal (14-20 weeks, age < 0) samples whose first 5 CpGs rise
    linearly with age (prenatal ones on the same line, with noise below the 6 weeks' change),
    the rest noise."""
    rng = np.random.default_rng(seed)
    weeks = rng.uniform(14, 20, n_pre)
    age = np.concatenate([rng.uniform(0, 90, n_post), (weeks - 40) / 52.18])
    betas = rng.uniform(0.49, 0.51, (n_post + n_pre, n_cpg))
    betas[:, :5] = 0.3 + 0.004 * age[:, None] + rng.normal(0, 0.0001, (len(age), 5))
    obs = pd.DataFrame({"age": age, "prenatal": age < 0,
                        "gestational_weeks": np.r_[np.full(n_post, np.nan), weeks],
                        "split": np.where(np.arange(len(age)) % 4 == 0, "test", "train")},
                       index=[f"S{i}" for i in range(len(age))])
    return ad.AnnData(X=betas.astype(np.float32), obs=obs,
                      var=pd.DataFrame(index=[f"cg{i:02d}" for i in range(n_cpg)]))


def test_no_prenatal_or_test_sample_reaches_the_fit_and_scrambling_them_changes_nothing():
    adata = brains()
    values = real_fetal.features(adata, "cpg")
    clock = real_fetal.fit_brain_clock(values, adata.obs, "cpg", seed=0)
    prenatal = adata.obs.index[adata.obs["prenatal"]]
    test = adata.obs.index[adata.obs["split"] == "test"]
    assert len(clock.trained_on) == 60  # the 80 postnatal minus their 20 test samples
    assert not clock.trained_on.isin(prenatal).any() and not clock.trained_on.isin(test).any()
    scrambled = values.copy()
    unseen = prenatal.union(test)
    scrambled.loc[unseen] = np.random.default_rng(1).uniform(
        0, 1, (len(unseen), 30)).astype(np.float32)
    again = real_fetal.fit_brain_clock(scrambled, adata.obs, "cpg", seed=0)
    assert np.allclose(clock.model.coef_, again.model.coef_, rtol=0, atol=1e-12)
    assert clock.model.alpha_ == pytest.approx(again.model.alpha_, rel=1e-12)


def test_a_planted_developmental_trend_is_recovered():
    adata = brains()
    values = real_fetal.features(adata, "cpg")
    clock = real_fetal.fit_brain_clock(values, adata.obs, "cpg", seed=0)
    frame = real_fetal.predictions(clock, values, adata.obs, "simulated")
    trend = real_fetal.development_trend(frame)
    assert trend["n"] == 20 and trend["spearman"] > 0.8
    assert 0 < trend["slope_years_per_week"] < 0.2
    assert not frame.loc[frame["prenatal"], "in_training"].any()
    held_out = real_fetal.held_out_metrics(frame)
    assert held_out["n"] == 20 and held_out["MAE"] < 2  # the planted line predicts age


def test_missing_features_are_refused_not_imputed():
    adata = brains()
    values = real_fetal.features(adata, "cpg")
    clock = real_fetal.fit_brain_clock(values, adata.obs, "cpg", seed=0)
    with pytest.raises(MissingFeaturesError, match="1 of the clock's 30 cpg features"):
        clock.predict(values.drop(columns="cg03"))
    with pytest.raises(ValueError, match="unknown level 'probe'"):
        real_fetal.features(adata, "probe")
