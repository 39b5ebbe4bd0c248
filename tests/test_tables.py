"""The shared table display: numbered captions naming data and profile, three significant
figures, integers as integers, no positional index, human column names, a dash for missing."""

import numpy as np
import pandas as pd
import pytest

from helpers.book import tables
from helpers.book.tables import human, significant, table


@pytest.fixture(autouse=True)
def fresh_numbering():
    tables._COUNTER["shown"] = 0
    tables._DEFAULTS.update(data="", profile="")


def test_table_numbers_captions_rounds_and_formats_per_column():
    frame = pd.DataFrame({"rho": [0.285009, np.nan], "fdr": [4.2e-14, 0.5], "n_cells": [1234, 5]})
    html = table(frame, "Scores by hallmark.", formats={"fdr": "{:.1e}"}, data="real data",
                 profile="quick").to_html()
    assert "<caption>Table 1. Scores by hallmark (real data; quick profile).</caption>" in html
    assert ">0.285<" in html and "0.285009" not in html
    assert ">4.2e-14<" in html and ">–<" in html and ">1,234<" in html
    assert ">n cells<" in html  # human column name
    assert "row_heading" not in html.split("<tbody>")[1]  # a positional index is hidden
    second = table(frame.set_index("n_cells"), "Again.").to_html()
    assert "<caption>Table 2. Again.</caption>" in second and "row_heading" in second


def test_a_constant_data_column_moves_into_the_caption():
    frame = pd.DataFrame({"mae": [3.14159, 12.5], "data": ["simulated", "simulated"]})
    html = table(frame, "Clock errors", profile="default").to_html()
    assert "(simulated; default profile)" in html and ">data<" not in html
    mixed = frame.assign(data=["real", "simulated"])
    assert ">data<" in table(mixed, "Both").to_html()


def test_significant_figures_and_integers():
    assert significant(0.285009) == "0.285" and significant(12.345) == "12.3"
    assert significant(99.95) == "100" and significant(1234.5) == "1,234"
    assert significant(3.0) == "3" and significant(np.int64(12000)) == "12,000"
    assert significant(4.2e-5) == "4.20e-05" and significant(np.nan) == "–"
    assert significant(float("inf")) == "∞"


def test_repeated_column_names_are_refused():
    frame = pd.DataFrame([[1, 2]], columns=["mae", "mae"])
    with pytest.raises(ValueError, match="repeated column names"):
        table(frame, "Bad")


def test_bare_dataframes_go_through_the_same_helper():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    tables.use_for_dataframes("simulated atlas", "quick", shell=shell)
    frame = pd.DataFrame({"age_years": [30.123, 40.0]})
    frame.attrs["caption"] = "Donor ages"
    html = shell.display_formatter.formatters["text/html"](frame)
    assert "Table 1. Donor ages (simulated atlas; quick profile)." in html
    assert ">30.1<" in html and ">age years<" in html


def test_a_caption_naming_its_data_and_profile_is_not_told_again():
    said = table(pd.DataFrame({"mae": [1.0]}), "Errors (real: GTEx skin; profile quick)",
                 data="real data", profile="quick").caption
    assert said == "Table 1. Errors (real: GTEx skin; profile quick)"
    said = table(pd.DataFrame({"mae": [1.0]}), "Errors (real data)", profile="quick").caption
    assert said == "Table 2. Errors (real data) (quick profile)."


def test_headers_of_ages_and_age_errors_carry_years():
    assert human("MAE") == "MAE (years)"
    assert human("MAE (ours)") == "MAE (ours, years)"
    assert human("MAE_difference") == "MAE difference (years)"
    assert human("age_min") == "age min (years)"
    assert human("chronological age") == "chronological age (years)"
    assert human("MAE (years), mean") == "MAE (years), mean"  # already says so
    for other in ("R2", "MSE", "age genes", "age_group_share", "n"):
        assert human(other) == other.replace("_", " ")
    assert human(3) == 3
