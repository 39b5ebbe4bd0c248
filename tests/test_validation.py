"""The validation chapter's pieces: the GSE54848 / GSE76641 series-matrix designs parsed into
typed columns (on small files in GEO's format that the tests write), the real path from a
series matrix to the clock's gene features, the missing-CpG report and rules of the published
clocks, the choice of data source, proxies for unseen tissues and the trend verdicts."""

import gzip

import numpy as np
import pandas as pd
import pytest

from helpers.common import clocks
from helpers.data import geo, loaders, registry
from helpers.data.formats import DataFormatError
from helpers.precious1gpt import validation
from tests.conftest import requires_real_data


def _series_matrix(path, titles, sources, characteristics, table):
    """A gzip series matrix in GEO's layout: quoted cells, one column per sample."""
    samples = [f"GSM{100 + i}" for i in range(len(titles))]

    def line(field, cells):
        return "\t".join([field, *(f'"{c}"' for c in cells)])

    lines = ['!Series_title\t"a validation series"', '!Series_geo_accession\t"GSE00002"', "",
             line("!Sample_title", titles), line("!Sample_geo_accession", samples),
             line("!Sample_source_name_ch1", sources),
             *(line("!Sample_characteristics_ch1", cells) for cells in characteristics),
             "!series_matrix_table_begin", line('"ID_REF"', samples).replace('""', '"'),
             *("\t".join([f'"{probe}"', *map(str, values)]) for probe, values in table),
             "!series_matrix_table_end"]
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


REPROGRAMMING = dict(
    titles=["HDF_rep1", "Day3_rep1", "Day 7_towards iPSC", "HDF day 28", "iPSC_rep1",
            "hESC_H9"],
    sources=["Human dermal fibroblast", "Intermediate reprogrammed cells",
             "Intermediate reprogrammed cells", "Intermediate reprogrammed cells",
             "induced pluripotent stem cells", "human Embryonic stem cells"],
    characteristics=[
        ["cell type: Human dermal fibroblast", "cell type: reprogramming intermediate",
         "cell type: reprogramming intermediate", "cell type: reprogramming intermediate",
         "cell type: induced pluripotent stem cells", "cell type: human Embryonic stem cells"],
        ["time point: day 0", "time point: day 3", "", "time point: 28 days", "", ""],
    ],
    table=[("cg1", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), ("cg2", [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),
           ("cg3", [0.9, 0.8, 0.7, "null", 0.5, 0.4]), ("cg9", [0.5] * 6)],
)

FETAL = dict(
    titles=["fetal brain 9w", "fetal brain 12w", "fetal lung", "fetal lung 2"],
    sources=["fetal brain", "fetal brain", "fetal lung fibroblast", "fetal lung fibroblast"],
    characteristics=[["tissue: brain", "tissue: brain", "tissue: lung", "tissue: lung"],
                     ["gestational age (weeks): 9", "gestational age (weeks): 12 weeks",
                      "gestational age (weeks): week 14", "gestational age (weeks): 16w"]],
    table=[("cg1", [0.1, 0.2, 0.3, 0.4]), ("cg2", [0.3, 0.4, 0.5, 0.6]),
           ("cg3", [0.9, 0.8, 0.7, 0.6])],
)


def _read(tmp_path, spec, series):
    path = _series_matrix(tmp_path / f"{series}_series_matrix.txt.gz", **spec)
    return geo.with_design(geo.read_series_matrix(path, (0, 1)), series, path)


def test_reprogramming_design_parses_days_and_stages_into_typed_columns(tmp_path):
    obs = _read(tmp_path, REPROGRAMMING, "GSE54848").obs
    assert obs["day"].dtype == float
    np.testing.assert_array_equal(obs["day"].to_numpy()[:4], [0, 3, 7, 28])
    assert obs["day"].iloc[4:].isna().all()
    assert list(obs["stage"]) == ["fibroblast", "reprogramming", "reprogramming",
                                  "reprogramming", "iPSC", "ESC"]
    assert set(obs["tissue"]) == {"Fibroblast"} and set(obs["modality"]) == {"methylation"}


def test_fetal_design_parses_weeks_tissue_and_prenatal_age(tmp_path):
    obs = _read(tmp_path, FETAL, "GSE76641").obs
    np.testing.assert_array_equal(obs["weeks"], [9, 12, 14, 16])
    assert list(obs["tissue"]) == ["brain", "brain", "lung", "lung"]
    np.testing.assert_allclose(obs["age"], (obs["weeks"] - 40) / 52.18)
    assert (obs["age"] < 0).all()


@pytest.mark.parametrize(("series", "spec", "edit", "message"), [
    ("GSE76641", FETAL, lambda c: [c[0], [f"gestational age (weeks): {v}"
                                          for v in ("9", "n/a", "12", "9")]],
     "GSM101.*no weeks in field.*gestational age"),
    ("GSE76641", FETAL, lambda c: [c[0]], "no characteristics field naming weeks"),
    ("GSE54848", REPROGRAMMING, lambda c: [["cell type: unknown"] * 6, [""] * 6],
     "sample 'GSM101' has no day after transfection"),
])
def test_unparseable_designs_name_file_sample_and_field(tmp_path, series, spec, edit,
                                                        message):
    spec = {**spec, "characteristics": edit(spec["characteristics"])}
    if series == "GSE54848":
        spec["titles"] = ["HDF", "sample", "x", "y", "z", "w"]
        spec["sources"] = ["Human dermal fibroblast", *["cells"] * 5]
    with pytest.raises(DataFormatError, match=f"{series}_series_matrix.txt.gz.*{message}"):
        _read(tmp_path, spec, series)


def test_table_with_fewer_samples_than_its_header_names_both_counts(tmp_path):
    table = [(probe, values) for probe, values in FETAL["table"]]
    path = _series_matrix(tmp_path / "short_series_matrix.txt.gz", **{**FETAL, "table": table})
    text = gzip.open(path, "rt").read().replace('"ID_REF"\t"GSM100"\t', '"ID_REF"\t')
    with gzip.open(path, "wt") as stream:
        stream.write(text)
    with pytest.raises(DataFormatError,
                       match="short_series_matrix.*header lists 3 samples but field "
                             "'!Sample_geo_accession' has 4"):
        geo.read_series_matrix(path, (0, 1))


def test_real_path_from_series_matrix_to_gene_features(tmp_path, monkeypatch):
    """load_validation_series + TSS200 means, with the registry fetch pointed at a written
    file: the same gene-level function as the training data, missing values kept NaN."""
    path = _series_matrix(tmp_path / "GSE54848_series_matrix.txt.gz", **REPROGRAMMING)
    fetched = []
    monkeypatch.setattr(geo, "fetch", lambda key, registry: fetched.append(key) or path)
    probe_map = pd.DataFrame({"probe": ["cg1", "cg2", "cg3", "cg9"],
                              "gene": ["GENE_A", "GENE_A", "GENE_B", "GENE_C"],
                              "region": ["TSS200", "TSS200", "TSS200", "TSS1500"]})
    adata = geo.load_validation_series("GSE54848", keep={"cg1", "cg2", "cg3"})
    assert fetched == ["geo_gse54848_series_matrix"]
    assert list(adata.var_names) == ["cg1", "cg2", "cg3"]
    values, coverage = validation.gene_level(adata.to_df(), probe_map)
    assert list(values.columns) == ["GENE_A", "GENE_B"]
    np.testing.assert_allclose(values["GENE_A"], [0.2, 0.3, 0.4, 0.5, 0.6, 0.7], atol=1e-6)
    assert np.isnan(values.loc["GSM103", "GENE_B"])
    assert coverage.loc["GENE_A", "n_probes_measured"] == 2


# --- published clocks: the missing-CpG report and rules -------------------------------------

def _toy():
    return clocks.LinearClock("toy", pd.Series({"cg1": 2.0, "cg2": -1.0, "cg3": 1.0}), 0.5,
                              "identity", {})


def test_missing_cpg_report_and_rules_on_a_matrix_with_cpgs_removed():
    betas = pd.DataFrame({"cg1": [0.2, 0.4, np.nan], "cg3": [0.5, 0.7, 0.9]},
                         index=["s1", "s2", "s3"])
    report = clocks.missing_feature_report(_toy(), betas)
    assert report["n_absent"] == 1 and report["absent"] == ["cg2"]
    assert report["share_absent"] == pytest.approx(1 / 3)
    assert report["n_missing_values"] == 1 and report["n_features_with_missing_values"] == 1
    for rule in ("refuse", "dataset_mean"):
        with pytest.raises(clocks.MissingFeaturesError, match="cg2"):
            clocks.apply_clock(_toy(), betas, rule)
    with pytest.raises(clocks.MissingFeaturesError, match="reference does not cover"):
        clocks.apply_clock(_toy(), betas, "reference", reference=pd.Series({"cg1": 0.1}))
    predicted, report = clocks.apply_clock(_toy(), betas, "reference",
                                           reference=pd.Series({"cg2": 0.6}), reference_name="r")
    assert report["rule"] == "reference" and report["reference"] == "r"
    # s3's missing cg1 takes the mean of s1 and s2 (0.3); absent cg2 takes the reference 0.6
    np.testing.assert_allclose(predicted, 0.5 + 2 * np.array([0.2, 0.4, 0.3]) - 0.6
                               + np.array([0.5, 0.7, 0.9]))
    with pytest.raises(ValueError, match="unknown missing-feature rule"):
        clocks.missing_feature_report(_toy(), betas, "zero")


def test_missing_values_are_never_passed_silently_to_a_clock():
    betas = pd.DataFrame({"cg1": [0.2, np.nan], "cg2": [0.1, 0.1], "cg3": [0.5, 0.5]})
    with pytest.raises(clocks.MissingFeaturesError, match="1 missing values"):
        clocks.predict_age(_toy(), betas)
    predicted, report = clocks.apply_clock(_toy(), betas, "dataset_mean")
    assert report["n_missing_values"] == 1
    assert predicted.iloc[1] == pytest.approx(predicted.iloc[0])


@requires_real_data
def test_horvath_missing_cpg_report_on_gse30870_with_cpgs_removed():
    horvath = clocks.load_clock("horvath2013")
    betas = loaders.load_gse30870().to_df()
    removed = list(horvath.weights.index[:10])
    report = clocks.missing_feature_report(horvath, betas.drop(columns=removed))
    assert report["n_features"] == 353 and report["absent"] == removed
    assert report["share_absent"] == pytest.approx(10 / 353)
    with pytest.raises(clocks.MissingFeaturesError, match=r"10 of 353 features \(CpGs\)"):
        clocks.apply_clock(horvath, betas.drop(columns=removed))
    # filling the removed CpGs from a reference of their own values gives the full prediction
    reference = betas[removed].mean()
    filled, _ = clocks.apply_clock(horvath, betas.drop(columns=removed), "reference", reference)
    full = clocks.predict_age(horvath, betas.assign(**reference.to_dict()))
    np.testing.assert_allclose(filled, full)


@requires_real_data
def test_shared_gse30870_function_gives_the_data_sources_number():
    frame, scores = clocks.clock_on_gse30870("horvath2013")
    assert scores["n"] == 16 and round(scores["MAE"], 2) == 10.48
    assert set(frame["group"]) == {"newborns", "aged 89-103"}
    assert (frame["data"] == "real (GSE30870)").all()


# --- data source, tissue proxies, trends ---------------------------------------------------

def test_choose_source_uses_real_series_only_when_both_are_here():
    assert validation.choose_source("auto", {"ipsc": True, "fetal": True}) == "real"
    assert validation.choose_source("auto", {"ipsc": True, "fetal": False}) == "simulated"
    assert validation.choose_source("simulated", {"ipsc": True, "fetal": True}) == "simulated"
    with pytest.raises(ValueError, match="data_source must be one of"):
        validation.choose_source("GEO")


def test_local_copy_finds_a_downloaded_series_without_downloading(isolated_cache):
    key = geo.VALIDATION_SERIES["GSE76641"][0]
    assert registry.local_copy(key) is None
    assert validation.real_series_present() == {"ipsc": False, "fetal": False}
    target = isolated_cache / "downloads" / "geo" / "GSE76641_series_matrix.txt.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    # a file merely lying in the cache was never checked: not present until fetch recorded it
    assert registry.local_copy(key) is None
    assert validation.real_series_present() == {"ipsc": False, "fetal": False}
    registry.record_hash(key, registry.sha256_of(target))
    assert registry.local_copy(key) == target
    assert validation.real_series_present() == {"ipsc": False, "fetal": True}


def test_unseen_tissues_need_a_proxy_the_model_knows():
    tissues = pd.Series(["Fibroblast", "Brain"], index=["a", "b"])
    tokens, table = validation.tissue_tokens(tissues, ["Brain", "Skin"], {"Fibroblast": "Skin"})
    assert list(tokens) == ["Skin", "Brain"]
    assert table.set_index("tissue").loc["Fibroblast", "rule"] == "proxy"
    with pytest.raises(ValueError, match="'Fibroblast' was not seen in training"):
        validation.tissue_tokens(tissues, ["Brain", "Skin"], {})
    with pytest.raises(ValueError, match="proxy 'Heart'"):
        validation.tissue_tokens(tissues, ["Brain", "Skin"], {"Fibroblast": "Heart"})


def test_time_trend_and_verdicts():
    frame = pd.DataFrame({"day": [0, 0, 7, 7, 14, 14, np.nan],
                          "predicted": [50, 48, 40, 41, 20, 22, 0]})
    trend = validation.time_trend(frame, "day")
    assert trend["n_samples"] == 6 and trend["n_time_points"] == 3
    assert trend["spearman_means"] == pytest.approx(-1.0)
    assert validation.verdict(trend["spearman_samples"], -1) == "holds"
    assert validation.verdict(-0.5, -1) == "same direction, weaker"
    assert validation.verdict(0.95, -1) == "does not hold"
    with pytest.raises(ValueError, match="at least three time points"):
        validation.time_trend(frame[frame["day"] < 10], "day")


def test_claims_are_judged_on_what_each_figure_panel_shows():
    ipsc = pd.DataFrame({"day": [0, 0, 7, 7, 14, 14], "predicted": [50, 30, 45, 28, 20, 10],
                         "data": "simulated"})
    fetal = pd.DataFrame({"weeks": [9, 9, 12, 12, 15, 15], "predicted": [-9, 0, -8, 0, -7, 1],
                          "data": "simulated"})
    table = validation.judge_claims({"ipsc": ipsc, "fetal": fetal}, "toy")
    assert list(table["judged on"]) == ["samples", "means"]
    assert table["Spearman (judged)"].iloc[1] == pytest.approx(1.0)  # week means rise
    assert table["Spearman (samples)"].iloc[1] < 0.5  # the tissue spread hides it per sample
    assert list(table["verdict"]) == ["same direction, weaker", "holds"]


def test_extremes_table_per_clock_and_group():
    frame = pd.DataFrame({"age": [0.0, 0.0, 90.0, 100.0], "predicted": [1.0, -1.0, 80.0, 85.0],
                          "group": ["newborns", "newborns", "aged 89-103", "aged 89-103"]})
    table = validation.extremes_table({"toy": frame}).set_index("group")
    assert table.loc["newborns", "MAE"] == 1.0 and table.loc["newborns", "mean error"] == 0.0
    assert table.loc["aged 89-103", "mean error"] == pytest.approx(-12.5)


def test_a_planted_trend_reads_as_recovered_and_only_real_data_as_a_verdict():
    assert validation.reading("holds", "simulated") == "recovered (planted)"
    assert validation.reading("same direction, weaker", "simulated") == \
        "partly recovered (planted)"
    assert validation.reading("does not hold", "simulated") == "not recovered (planted)"
    assert validation.reading("holds", "real (GSE76641)") == "holds"
