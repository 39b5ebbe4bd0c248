"""The shared table display: captioned, rounded, per-column formats, missing values as a dash."""

import numpy as np
import pandas as pd

from helpers.book.tables import table


def test_table_rounds_formats_per_column_and_keeps_the_caption():
    frame = pd.DataFrame({"rho": [0.285009, np.nan], "fdr": [4.2e-14, 0.5], "n": [1234, 5]})
    html = table(frame, "Table 1. Real data.", formats={"fdr": "{:.1e}"}).to_html()
    assert "<caption>Table 1. Real data.</caption>" in html
    assert ">0.29<" in html and "0.285009" not in html
    assert ">4.2e-14<" in html and ">–<" in html and ">1,234<" in html
    assert "row_heading" in html.split("<tbody>")[1]
    assert "row_heading" not in table(frame, "x", hide_index=True).to_html().split("<tbody>")[1]
