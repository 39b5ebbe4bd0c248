"""Chapter results and the appendix: what a chapter records is what the appendix reads back,
bad records are refused with the file and field named, and differences are ours - paper."""

import pandas as pd
import pytest

from helpers.book import appendix, provenance, results


def test_table_round_trip_keeps_rows_data_label_and_run(tmp_path):
    rec = results.recorder("p1_transformer_clock", "quick", 3, root=tmp_path)
    table = pd.DataFrame({"MAE": [4.0, 6.0]}, index=pd.Index(["methylation", "expression"],
                                                            name="modality"))
    rec.table("table1", table, data="simulated")
    back = results.load_table("p1_transformer_clock", "table1", root=tmp_path)
    assert back["modality"].tolist() == ["methylation", "expression"]
    assert back["MAE"].tolist() == [4.0, 6.0]
    assert set(back["data"]) == {"simulated"}
    assert back.attrs["profile"] == "quick" and back.attrs["seed"] == 3


def test_a_new_run_clears_the_chapters_old_results(tmp_path):
    rec = results.recorder("p1_transformer_clock", "quick", 0, root=tmp_path)
    rec.table("old", pd.DataFrame({"x": [1]}), data="real")
    results.recorder("p1_transformer_clock", "quick", 0, root=tmp_path)
    with pytest.raises(FileNotFoundError, match="recorded no table 'old'"):
        results.load_table("p1_transformer_clock", "old", root=tmp_path)


def test_missing_chapter_and_unlabelled_rows_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="--chapter h2_hallmark_clocks"):
        results.load_table("h2_hallmark_clocks", "table_s3", root=tmp_path)
    rec = results.recorder("h2_hallmark_clocks", "quick", 0, root=tmp_path)
    with pytest.raises(ValueError, match="no 'data' column"):
        rec.table("table_s3", pd.DataFrame({"MAE": [1.0]}))
    with pytest.raises(ValueError, match="neither 'real' nor 'simulated'"):
        rec.table("table_s3", pd.DataFrame({"MAE": [1.0]}), data="made up")


def test_claims_are_checked_against_the_claims_file(tmp_path):
    rec = results.recorder("h2_hallmark_clocks", "default", 0, root=tmp_path)
    with pytest.raises(KeyError, match="claims.csv: no claim_id 'nope'"):
        rec.claim("nope", "reproduced", "", "simulated")
    with pytest.raises(ValueError, match="belongs to chapter 'p1_validation'"):
        rec.claim("p1_ipsc_younger", "reproduced", "", "simulated")
    with pytest.raises(ValueError, match="verdict 'yes'"):
        rec.claim("h_hybrid_lowest_mae", "yes", "", "simulated")
    rec.claim("h_hybrid_lowest_mae", "not reproduced", "hallmark lowest", "simulated")
    assert rec.claim("h_hybrid_lowest_mae", "reproduced", "hybrid lowest",
                     "simulated") == "reproduced"  # replaces; the ordering is not planted
    table = results.claims(root=tmp_path).set_index(["claim_id", "evidence kind"])
    assert table.loc[("h_hybrid_lowest_mae", "simulated"), "verdict"] == "reproduced"
    assert table.loc[("h_hybrid_lowest_mae", "simulated"), "evidence"] == "hybrid lowest"
    assert table.loc[("h_hybrid_lowest_mae", "real"), "verdict"] == "not run"
    assert table.loc[("p1_ipsc_younger", "simulated"), "verdict"] == "not run"
    assert len(table) == 2 * len(results.claim_list())


def test_a_planted_effect_is_recovered_never_reproduced(tmp_path):
    rec = results.recorder("p1_transfer_learning", "default", 0, root=tmp_path)
    assert rec.claim("p1_aplnr_il23r_lead", "reproduced", "x", "simulated") == (
        "recovered (planted)")
    assert rec.claim("p1_aplnr_il23r_lead", "not reproduced", "x", "simulated") == (
        "not recovered")
    assert rec.claim("p1_pretraining_improves", "reproduced", "x", "simulated") == "reproduced"
    assert rec.claim("p1_pretraining_improves", "reproduced", "x", "real (GSE7621)") == (
        "reproduced")
    table = results.claims(root=tmp_path)
    listed = results.claim_list().set_index("claim_id")["simulator_plants"]
    planted = table[(table["evidence kind"] == "simulated")
                    & table["claim_id"].map(listed).eq("yes")]
    assert not planted["verdict"].str.contains("reproduced").any()


def test_the_quick_profile_records_no_verdict(tmp_path):
    rec = results.recorder("p1_validation", "quick", 0, root=tmp_path)
    assert rec.claim("p1_fetal_older", "reproduced", "rho 0.95", "real (GSE74193)") == (
        "not judged (quick profile)")
    row = results.claims(root=tmp_path).query(
        "claim_id == 'p1_fetal_older' and `evidence kind` == 'real'").iloc[0]
    assert row["verdict"] == "not judged (quick profile)" and row["rule"] == "reproduced"
    assert row["evidence"] == "rho 0.95"


def test_a_refused_statistic_records_why_and_no_verdict(tmp_path):
    rec = results.recorder("p1_transfer_learning", "default", 0, root=tmp_path)
    said = rec.refuse("p1_pretraining_improves", "too few splits (2; at least 5)", "simulated")
    assert said == "not judged (too few splits (2; at least 5))"
    row = results.claims(root=tmp_path).query(
        "claim_id == 'p1_pretraining_improves' and `evidence kind` == 'simulated'").iloc[0]
    assert row["verdict"] == said and row["rule"] == ""
    quick = results.recorder("p1_transfer_learning", "quick", 0, root=tmp_path)
    assert quick.refuse("p1_pretraining_improves", "too few", "simulated") == (
        "not judged (quick profile)")


def test_real_data_no_chapter_can_test_says_why(tmp_path):
    row = results.claims(root=tmp_path).query(
        "claim_id == 'p1_ipsc_younger' and `evidence kind` == 'real'").iloc[0]
    assert row["verdict"] == "not testable here" and "GSE54848" in row["evidence"]


def test_claims_file_refuses_missing_fields(tmp_path):
    good = results.CLAIMS_FILE.read_text()
    bad = tmp_path / "claims.csv"
    bad.write_text(good.replace(",no,yes,", ",maybe,yes,", 1))
    with pytest.raises(ValueError, match="claims.csv: field simulator_plants"):
        results.claim_list(bad)
    lines = [line for line in good.splitlines() if not line.startswith("#")]
    header = lines[0].replace(",book_threshold", "")
    bad.write_text("\n".join([header]))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['book_threshold'\]"):
        results.claim_list(bad)


def test_a_claim_keeps_one_real_and_one_simulated_row_of_evidence(tmp_path):
    rec = results.recorder("p1_validation", "default", 0, root=tmp_path)
    rec.claim("p1_fetal_older", "reproduced", "planted", "simulated")
    rec.claim("p1_fetal_older", "partly reproduced", "first", "real (GSE74193)")
    rec.claim("p1_fetal_older", "not reproduced", "brains", "real (GSE74193)")  # replaces
    rows = results.claims(root=tmp_path).query("claim_id == 'p1_fetal_older'")
    assert sorted(zip(rows["data"], rows["verdict"], strict=True)) == [
        ("real (GSE74193)", "not reproduced"), ("simulated", "recovered (planted)")]


def test_claims_file_names_real_chapters():
    from helpers.book.run import ROOT, chapters_from_toc
    listed = {c for field in results.claim_list()["chapter"]
              for c in results.claim_chapters(field)}
    assert listed <= set(chapters_from_toc(ROOT / "_toc.yml"))


def test_a_claim_listed_for_two_chapters_records_from_each_and_names_it(tmp_path):
    assert results.claim_chapters("p1_transformer_clock; p1_real_clock") == [
        "p1_transformer_clock", "p1_real_clock"]
    results.recorder("p1_transformer_clock", "default", 0, root=tmp_path).claim(
        "p1_methylation_beats_expression", "reproduced", "sim", "simulated")
    results.recorder("p1_real_clock", "default", 0, root=tmp_path).claim(
        "p1_methylation_beats_expression", "not reproduced", "real", "real (GTEx)")
    rows = results.claims(root=tmp_path).query("claim_id == 'p1_methylation_beats_expression'")
    assert sorted(zip(rows["chapter"], rows["verdict"], strict=True)) == [
        ("p1_real_clock", "not reproduced"), ("p1_transformer_clock", "reproduced")]
    with pytest.raises(ValueError, match="belongs to chapter"):
        results.recorder("p1_validation", "default", 0, root=tmp_path).claim(
            "p1_methylation_beats_expression", "reproduced", "x", "real")


def test_beside_takes_ours_minus_paper_and_keeps_unmatched_rows():
    ours = pd.DataFrame({"Model": ["Hybrid Ridge", "Extra"], "MAE": [7.0, 9.0],
                         "data": "simulated"})
    paper = pd.DataFrame({"Model": ["Hybrid Ridge"], "MAE": [6.39]})
    table = provenance.beside_published(ours, paper, ["Model"], ["MAE"])
    assert table.loc[0, "MAE difference"] == pytest.approx(0.61)
    assert pd.isna(table.loc[1, "MAE (paper)"]) and table.loc[1, "MAE (ours)"] == 9.0
    assert list(table.columns) == ["Model", "MAE (ours)", "MAE (paper)", "MAE difference",
                                   "data"]


def test_table_s3_rebuilt_from_a_recorded_chapter_table(tmp_path):
    rec = results.recorder("h2_hallmark_clocks", "quick", 0, root=tmp_path)
    rows = [{"Model": m, "Level": "Donor", "Split": "Test", "MAE": 5.0, "RMSE": 6.0, "R2": 0.5,
             "pearson_r": 0.8, "n": 17} for m in ("Baseline Ridge", "Hybrid Ridge")]
    rec.table("table_s3", pd.DataFrame(rows), data="simulated")
    rebuilt = appendix.h_table_s3(tmp_path)
    hybrid = rebuilt.table.set_index("Model").loc["Hybrid Ridge"]
    assert hybrid["MAE (paper)"] == 6.39 and hybrid["MAE difference"] == pytest.approx(-1.39)
    assert rebuilt.profile == "quick" and set(rebuilt.table["data"]) == {"simulated"}


def test_verdict_and_other_runs():
    assert results.verdict(True) == "reproduced"
    assert results.verdict(False, True) == "partly reproduced"
    assert results.verdict(False) == "not reproduced"
    runs = pd.DataFrame({"profile": ["quick", "default", "", None], "seed": [0, 0, None, None]})
    assert results.other_runs(runs, "quick", 0) == 1


def test_a_label_naming_simulated_data_is_simulated_evidence():
    assert results.data_kind("real (GSE74193)") == "real"
    assert results.data_kind("simulated") == "simulated"
    assert results.data_kind("simulated genes, real Reactome") == "simulated"


def test_the_glance_lists_each_verdict_with_its_kind_of_data(tmp_path):
    rec = results.recorder("h2_hallmark_clocks", "default", 0, root=tmp_path)
    assert rec.glance() == "- No claim of the paper is judged in this chapter."
    rec.claim("h_hybrid_lowest_mae", "not reproduced", "hallmark lowest", "simulated")
    rec.recovery("hidden program in residuals", "3 of 5 genes", "most genes")
    claim = results.claim_list().set_index("claim_id").loc["h_hybrid_lowest_mae", "claim"]
    assert rec.glance().splitlines() == [
        f"- {claim} (simulated data): **not reproduced**",
        "- planted truth, hidden program in residuals (simulated data): 3 of 5 genes"]
