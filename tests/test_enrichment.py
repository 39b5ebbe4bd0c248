"""Enrichment and target prioritisation: a planted gene set comes first with scipy's
hypergeometric p-value, the background restricts genes and sets, the published Table 2 sits
beside ours, the Open Genes hallmark library is built from the real file, and shared targets
are ranked by disease count, then mean rank."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.book import provenance
from helpers.precious1gpt import enrichment, targets
from tests.conftest import requires_real_data

GENES = [f"G{i}" for i in range(200)]
LIBRARY = {"PLANTED": GENES[:10], "HALF": GENES[5:25], "OTHER": GENES[100:130],
           "OUTSIDE": ["X1", "X2", "X3", "G150"]}


def test_planted_set_comes_first_with_the_hypergeometric_p_value():
    query = GENES[:8] + GENES[50:52]  # 8 of PLANTED's 10 genes, 2 unrelated
    result = enrichment.enrich(query, LIBRARY, background=GENES)
    assert result.iloc[0]["term"] == "PLANTED" and result.iloc[0]["rank"] == 1
    # background: 200 genes; PLANTED: 10; list: 10 genes, 8 in the set
    expected = stats.hypergeom.sf(8 - 1, 200, 10, 10)
    assert result.iloc[0]["p_value"] == pytest.approx(expected, rel=1e-9)
    assert result.iloc[0]["overlap"] == "8/10"
    # Benjamini-Hochberg over the tested terms
    assert (result["adjusted_p"] >= result["p_value"] - 1e-15).all()


def test_background_restricts_sets_and_the_universe():
    query = GENES[:8]
    with_model = enrichment.enrich(query, LIBRARY, background=GENES)
    outside = with_model.set_index("term")
    # OUTSIDE keeps only G150 inside the background; it has no hit, so it is not listed
    assert "OUTSIDE" not in outside.index
    everything = enrichment.enrich(query, LIBRARY, background=None)
    universe = len(enrichment.library_genes(LIBRARY))
    expected = stats.hypergeom.sf(8 - 1, universe, 10, 8)
    assert everything.set_index("term").loc["PLANTED", "p_value"] == pytest.approx(expected)


def test_empty_list_is_refused():
    with pytest.raises(ValueError, match="empty"):
        enrichment.enrich([], LIBRARY)


def test_term_ranks_and_sensitivity_follow_the_result():
    ranking = pd.Index(GENES[:8] + GENES[100:110] + GENES[50:90])
    watch = pd.Series({"PLANTED": "planted", "OTHER": "other", "MISSING": "absent"})
    result = enrichment.enrich(list(ranking[:20]), LIBRARY, GENES)
    ranks = enrichment.term_ranks(result, watch)
    assert ranks.loc["PLANTED", "rank"] == 1 and pd.isna(ranks.loc["MISSING", "rank"])
    table = enrichment.sensitivity(ranking, LIBRARY, watch, (10, 20),
                                   {"model": GENES, "all": None})
    assert list(table["top_k"]) == [10, 20, 10, 20]
    assert (table["rank PLANTED"] == 1).all() and table["watched_in_top_10"].min() >= 1


def test_published_table2_sits_beside_our_result():
    published = provenance.published_table("precious1gpt_table2")
    assert len(published) == 6 and published["reactome_id"].str.startswith("R-HSA-").all()
    ours = pd.DataFrame({"term": ["R-HSA-629587"], "overlap": ["4/6"], "p_value": [0.001],
                         "adjusted_p": [0.2], "rank": [1]})
    table = enrichment.compare_with_published(ours, published)
    assert table.loc["R-HSA-629587", "in_our_list"]
    assert not table.loc["R-HSA-6785470", "in_our_list"]
    assert table.loc["R-HSA-352230", "paper_p_value"] == 0.002


@requires_real_data
def test_hallmark_library_from_the_real_open_genes_file():
    library = enrichment.hallmark_library(min_genes=5)
    assert len(library) >= 5
    assert all(len(genes) >= 5 and genes == sorted(set(genes)) for genes in library.values())
    assert any("inflammation" in term for term in library)


def test_shared_targets_rank_by_disease_count_then_mean_rank():
    def ranking(genes):
        return pd.DataFrame({"rank": range(1, len(genes) + 1)}, index=genes)

    rankings = {"a": ranking(["APLNR", "X", "IL23R", "Y"]),
                "b": ranking(["IL23R", "APLNR", "Z", "X"]),
                "c": ranking(["Q", "APLNR", "W", "IL23R"])}
    shared = targets.shared_top_genes(rankings, top_k=3)
    assert list(shared.index[:2]) == ["APLNR", "IL23R"]
    assert shared.loc["APLNR", "diseases"] == 3 and shared.loc["IL23R", "diseases"] == 2
    assert shared.loc["IL23R", "mean_rank"] == pytest.approx(2.0)  # ranks 3 and 1
    assert "Y" not in shared.index  # rank 4 is outside the top 3
    positions = targets.target_positions(shared, ["APLNR", "NOPE"])
    assert positions.loc["APLNR", "priority"] == 1 and pd.isna(positions.loc["NOPE", "priority"])
    per_disease = targets.top_k_counts(rankings, ["APLNR", "IL23R", "NOPE"], top_k=2)
    assert per_disease.loc["APLNR", "diseases"] == 3  # ranks 1, 2, 2
    assert per_disease.loc["IL23R", "diseases"] == 1
    assert per_disease.loc["IL23R", "in_top_of"] == "b"
    assert per_disease.loc["NOPE", "diseases"] == 0


def test_overlap_tests_keep_missed_sets_and_match_the_hypergeometric_tail():

    background = [f"g{i}" for i in range(40)]
    library = {"A": background[:10], "B": background[10:20], "C": ["outside"]}
    genes = background[:8] + background[20:22]
    out = enrichment.overlap_tests(genes, library, background).set_index("set")
    assert out.loc["A", "hits"] == 8 and out.loc["A", "set_size"] == 10
    assert out.loc["A", "p_value"] == pytest.approx(stats.hypergeom.sf(7, 40, 10, 10))
    assert out.loc["A", "expected"] == pytest.approx(10 * 10 / 40)
    assert out.loc["B", "hits"] == 0 and out.loc["B", "p_value"] == 1.0
    assert out.loc["C", "set_size"] == 0 and out.loc["C", "p_value"] == 1.0
    assert (out["adjusted_p"] >= out["p_value"]).all()


def test_named_gene_ranks_say_where_each_gene_sits_or_that_the_model_lacks_it():
    ranking = pd.DataFrame({"mean_abs_shap": [3.0, 2.0, 1.0]}, index=["MTOR", "X", "SIRT1"])
    out = enrichment.named_gene_ranks(ranking, {"SIRT": ["SIRT1", "SIRT2"], "mTOR": ["MTOR"]},
                                      ["MTOR", "X", "SIRT1"]).set_index("gene")
    assert out.loc["MTOR", "rank"] == 1 and out.loc["SIRT1", "rank"] == 3
    assert not out.loc["SIRT2", "model gene"] and np.isnan(out.loc["SIRT2", "rank"])
    assert out.loc["SIRT1", "pathway"] == "SIRT"
