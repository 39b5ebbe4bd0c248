"""Words computed from numbers follow the numbers both ways, and refuse what is not a number."""

import math

import pytest

from helpers.common import wording


def test_n_of_m_both_ways():
    assert wording.n_of_m(4, 4) == "all 4"
    assert wording.n_of_m(0, 4) == "none of the 4"
    assert wording.n_of_m(1, 4) == "1 of 4"
    assert wording.n_of_m(2, 2) == "both" and wording.n_of_m(0, 2) == "neither"
    with pytest.raises(ValueError, match="between 0 and m = 3"):
        wording.n_of_m(5, 3)


def test_share_word_both_ways():
    assert wording.share_word(7, 10) == "most"
    assert wording.share_word(3, 10) == "a minority"
    assert wording.share_word(5, 10) == "half"
    assert wording.share_word(10, 10) == "all" and wording.share_word(0, 10) == "none"
    with pytest.raises(ValueError):
        wording.share_word(1, 0)


def test_compared_both_ways_and_tolerance():
    assert wording.compared(4.35, 12.55) == "lower than"
    assert wording.compared(12.55, 4.35) == "higher than"
    assert wording.compared(4.35, 4.40, tolerance=0.1) == "about equal to"
    with pytest.raises(ValueError, match="not a finite number"):
        wording.compared(math.nan, 1.0)


def test_intervals_relation_both_ways():
    assert wording.intervals_relation((9.55, 16.29), (13.61, 20.01)) == "overlapping"
    assert wording.intervals_relation((1.0, 2.0), (2.5, 3.0)) == "separate"
    assert wording.intervals_relation((2.5, 3.0), (1.0, 2.0)) == "separate"
    with pytest.raises(ValueError, match="low above high"):
        wording.intervals_relation((3.0, 1.0), (0.0, 1.0))


def test_interval_sign_and_change():
    assert wording.interval_sign(-2.0, -0.1) == "below 0"
    assert wording.interval_sign(0.1, 2.0) == "above 0"
    assert wording.interval_sign(-0.1, 2.0) == "includes 0"
    assert wording.change_word(17.27, 16.83) == "about the same"
    assert wording.change_word(12.48, 10.09) == "smaller"
    assert wording.change_word(10.0, 5.0) == "much smaller"
    assert wording.change_word(10.0, 12.0) == "larger"


def test_refused_statistics():
    assert wording.too_few(2, 5, "splits") == "too few splits (2; at least 5)"
    assert wording.too_few(5, 5, "splits") is None
    assert wording.p_text(0.041, 2, 5) == "not tested: too few splits (2; at least 5)"
    assert wording.p_text(0.041, 10, 5) == "p = 0.041"


def test_parameter_importances_are_refused_below_ten_completed_trials():
    import optuna

    from helpers.precious1gpt import tuning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert tuning.importance_refusal(study) == "too few completed trials (3; at least 10)"
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=7)
    assert tuning.importance_refusal(study) is None


def test_mean_sd_prints_the_mean_alone_where_the_sd_is_undefined():
    assert wording.mean_sd(3.14159, 0.5) == "3.142 ± 0.500"
    assert wording.mean_sd(3.14159, 0.5, digits=2) == "3.14 ± 0.50"
    assert wording.mean_sd(3.14159, float("nan"), digits=2) == "3.14"
