"""Warnings a chapter reports in a sentence instead of a stderr block naming local files."""

import io
import warnings

from helpers.book import page
from helpers.precious1gpt.transformer_clock import SmallCohortWarning


def test_collect_warnings_keeps_category_messages_and_shows_the_rest():
    with warnings.catch_warnings():
        shown = io.StringIO()
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: shown.write(
            f"{c.__name__}: {m}\n")
        caught = page.collect_warnings(SmallCohortWarning)
        for _ in range(2):  # repeated messages are all kept, not deduplicated per location
            warnings.warn("trial 0: 3 gradient steps per epoch", SmallCohortWarning,
                          stacklevel=1)
        warnings.warn("something else", RuntimeWarning, stacklevel=1)
    assert caught == ["trial 0: 3 gradient steps per epoch"] * 2
    assert shown.getvalue() == "RuntimeWarning: something else\n"


def test_warnings_are_reported_once_each_with_their_count():
    from helpers.book.page import warnings_sentence

    said = warnings_sentence(["few members", "few members", "small batch"], "quick profile")
    assert "3 raised" in said and "2 distinct" in said
    assert "“few members” (2 times)" in said and "“small batch”." in said
    assert "none was raised" in warnings_sentence([], "quick profile")
