"""Readers of the real Precious1GPT files added 2026-12-01 (GSE74193 brain methylomes,
GSE7621 Parkinson's arrays): small files of the same format written here, bad ones refused by
file and field, and the real files' shapes where the mirror is present."""

import gzip

import numpy as np
import pandas as pd
import pytest

from helpers.data import loaders
from helpers.data.formats import DataFormatError
from tests.conftest import requires_real_data

GOOD_TSV = [
    "\tGSM1\tGSM2\tGSM3",
    "cg01\t0.10\t0.20\t0.30",
    "cg02\t0.90\t0.80\t0.70",
    "Age\t45.5\t-0.45\t0.0",
]


def read_tsv(lines):
    return loaders.read_age_row_tsv([line + "\n" for line in lines], "brain.tsv.gz")


def test_age_row_tsv_becomes_samples_by_cpgs_with_ages_and_gestational_weeks():
    adata = read_tsv(GOOD_TSV)
    assert adata.shape == (3, 2) and list(adata.var_names) == ["cg01", "cg02"]
    assert adata.X[1].tolist() == pytest.approx([0.2, 0.8])
    assert adata.obs["age"].tolist() == [45.5, -0.45, 0.0]
    assert adata.obs["prenatal"].tolist() == [False, True, False]
    # 0.45 years before birth at a 40-week term is 40 - 0.45 x 52.18 = 16.5 weeks
    assert adata.obs.loc["GSM2", "gestational_weeks"] == pytest.approx(16.52, abs=0.01)
    assert adata.obs["gestational_weeks"].isna().tolist() == [True, False, True]


@pytest.mark.parametrize("lines, message", [
    (GOOD_TSV[:-1], r"brain.tsv.gz: the last row is 'cg02', not the 'Age' row"),
    (GOOD_TSV[:2] + ["cg02\t0.9\t0.8"] + GOOD_TSV[3:], r"brain.tsv.gz: missing value in field "
                                                       r"'cg02' \(a short row"),
    (GOOD_TSV[:2] + ["cg02\t0.9\t0.8\t0.7\t0.6"] + GOOD_TSV[3:], r"more values than the header"),
    (GOOD_TSV[:3] + ["Age\t45\tunknown\t3"], r"field 'Age' is missing, non-numeric .* \['GSM2'\]"),
    (GOOD_TSV[:3] + ["Age\t45\t\t3"], r"field 'Age' is missing"),
    (GOOD_TSV[:3] + ["Age\t45\t130\t3"], r"outside -1 to 120 years .* \['GSM2'\]"),
    (GOOD_TSV[:3] + ["Age\t45\t3"], r"field 'Age' is missing, non-numeric .* \['GSM3'\]"),
    (["\tGSM1\tGSM1\tGSM3"] + GOOD_TSV[1:], r"duplicated sample ids in the header: \['GSM1'\]"),
    (["\tGSM1\t\tGSM3"] + GOOD_TSV[1:], r"the header names no samples or has an empty id"),
    (GOOD_TSV[:2] + ["cg01\t0.9\t0.8\t0.7"] + GOOD_TSV[3:], r"duplicated feature ids"),
    (GOOD_TSV[:2] + ["cg02\t0.9\tx\t0.7"] + GOOD_TSV[3:], r"non-numeric value 'x' in field 'cg02'"),
    (GOOD_TSV[:2] + ["cg02\t0.9\t1.8\t0.7"] + GOOD_TSV[3:], r"outside \[0, 1\] in field 'cg02'"),
    (GOOD_TSV[:2] + ["cg02\t0.9\tNA\t0.7"] + GOOD_TSV[3:], r"missing value in field 'cg02'"),
    ([], r"brain.tsv.gz: empty file"),
])
def test_bad_age_row_tsv_is_refused_naming_file_and_field(lines, message):
    with pytest.raises(DataFormatError, match=message):
        read_tsv(lines)


def test_a_gzipped_age_row_tsv_reads_as_the_loader_reads_it(tmp_path):
    path = tmp_path / "small.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(GOOD_TSV) + "\n")
    with gzip.open(path, "rt") as handle:
        adata = loaders.read_age_row_tsv(handle, str(path))
    assert adata.shape == (3, 2) and adata.obs["age"].iloc[0] == 45.5


def pd_frames():
    expression = pd.DataFrame({
        "Probe": ["1_at", "2_at", "3_at"], "Gene.Symbol": ["SNCA", "TH", "GAPDH"],
        "GSM1.cel": [7.0, 9.0, 12.0], "GSM2.cel": [6.0, 5.0, 12.5], "GSM3.cel": [8.0, 9.5, 11.0]})
    samples = pd.DataFrame({"GSM": ["GSM1", "GSM2", "GSM3"],
                            "disease": ["control", "parkinson's", "control"]})
    return expression, samples


def gse7621(expression, samples):
    return loaders.gse7621_adata(expression, samples, "exp.rda", "meta.rda")


def test_gse7621_frames_become_samples_by_genes_with_diagnoses():
    adata = gse7621(*pd_frames())
    assert adata.shape == (3, 3) and list(adata.var_names) == ["SNCA", "TH", "GAPDH"]
    assert adata.obs["case"].tolist() == [False, True, False]
    assert adata.X[:, 1].tolist() == [9.0, 5.0, 9.5]


def _edit(which, change):
    expression, samples = pd_frames()
    change(expression if which == "expression" else samples)
    return expression, samples


@pytest.mark.parametrize("which, change, message", [
    ("expression", lambda f: f.drop(columns="Gene.Symbol", inplace=True),
     r"exp.rda: missing field\(s\) \['Gene.Symbol'\]"),
    ("samples", lambda f: f.drop(columns="disease", inplace=True),
     r"meta.rda: missing field\(s\) \['disease'\]"),
    ("expression", lambda f: f.loc.__setitem__((2, "Gene.Symbol"), "TH"),
     r"exp.rda: duplicated gene symbols in field Gene.Symbol: \['TH'\]"),
    ("samples", lambda f: f.loc.__setitem__((2, "GSM"), "GSM9"),
     r"meta.rda: field GSM lacks \['GSM3'\] .* or names \['GSM9'\]"),
    ("samples", lambda f: f.loc.__setitem__((1, "disease"), "PD?"),
     r"meta.rda: field disease holds \['pd\?'\]"),
    ("expression", lambda f: f.loc.__setitem__((0, "GSM2.cel"), np.nan),
     r"exp.rda: missing or non-numeric value in field 'GSM2.cel'"),
    ("expression", lambda f: f.__setitem__("GSM3.cel", [800.0, 900.0, 1100.0]),
     r"exp.rda: sample columns hold values up to 1.1e\+03; expected log2 RMA"),
])
def test_bad_gse7621_frames_are_refused_naming_file_and_field(which, change, message):
    with pytest.raises(DataFormatError, match=message):
        gse7621(*_edit(which, change))


@requires_real_data
def test_real_gse74193_is_675_brains_65_of_them_prenatal():
    adata = loaders.load_gse74193()
    assert adata.shape == (675, 7503)
    assert adata.obs["split"].value_counts().to_dict() == {"train": 472, "test": 203}
    prenatal = adata.obs["prenatal"]
    assert prenatal.sum() == 65
    weeks = adata.obs.loc[prenatal, "gestational_weeks"]
    assert 13 < weeks.min() and weeks.max() < 21  # about 14-20 weeks
    assert adata.obs["age"].max() == pytest.approx(96.98, abs=0.01)
    assert adata.uns["provenance"]["train"]["sha256"].startswith("36bf9ec8")


@requires_real_data
def test_real_gse7621_is_16_parkinsons_and_9_controls():
    adata = loaders.load_gse7621()
    assert adata.shape == (25, 13673)
    assert adata.obs["case"].sum() == 16 and (~adata.obs["case"]).sum() == 9
    assert {"SNCA", "TH"} <= set(adata.var_names)


def hagr_frames():
    genage = pd.DataFrame({"symbol": ["GHR", "SIRT1", "TP53"], "why": ["mammal"] * 3})
    cellage = pd.DataFrame({"Gene symbol": ["CDKN2A", "TERT", "CDKN2A", "XYZ"],
                            "Senescence Effect": ["Induces", "Inhibits", "Induces", "Unclear"]})
    header = '"gene_symbol";"gene_name";"ovevrexp";"underexp"'
    signatures = pd.DataFrame({header: ['"C1QA";"complement";"1";"0"',
                                        '"COL1A1";"collagen";"0";"1"']})
    return genage, cellage, signatures


WHERE = {"genage": "genage.parquet", "cellage": "cellage.parquet",
         "signatures": "signatures.parquet"}


def test_hagr_tables_become_five_gene_sets():
    sets = loaders.hagr_gene_sets(*hagr_frames(), WHERE)
    assert sets == {"GenAge human": ["GHR", "SIRT1", "TP53"],
                    "CellAge: induces senescence": ["CDKN2A"],
                    "CellAge: inhibits senescence": ["TERT"],
                    "Ageing signature: up with age": ["C1QA"],
                    "Ageing signature: down with age": ["COL1A1"]}


def test_bad_hagr_tables_are_refused_naming_file_and_field():
    genage, cellage, signatures = hagr_frames()
    with pytest.raises(DataFormatError, match=r"genage.parquet: field 'symbol' is empty in 1"):
        loaders.hagr_gene_sets(genage.assign(symbol=["GHR", None, "TP53"]), cellage,
                               signatures, WHERE)
    with pytest.raises(DataFormatError, match=r"cellage.parquet: missing field\(s\) "
                                              r"\['Senescence Effect'\]"):
        loaders.hagr_gene_sets(genage, cellage.drop(columns="Senescence Effect"),
                               signatures, WHERE)
    both = pd.DataFrame({signatures.columns[0]: ['"C1QA";"complement";"1";"1"']})
    with pytest.raises(DataFormatError, match=r"signatures.parquet: fields ovevrexp / underexp"):
        loaders.hagr_gene_sets(genage, cellage, both, WHERE)
    with pytest.raises(DataFormatError, match=r"genage.parquet: not a readable parquet file"):
        loaders.read_parquet_bytes(b"PAR1 truncated", "genage.parquet")


@requires_real_data
def test_real_hagr_gene_sets_have_the_documented_sizes():
    sets = loaders.load_hagr_gene_sets()
    sizes = {name: len(genes) for name, genes in sets.items()}
    assert sizes["GenAge human"] == 307
    assert sizes["Ageing signature: up with age"] == 525
    assert sizes["Ageing signature: down with age"] == 734
    assert sizes["CellAge: induces senescence"] + sizes["CellAge: inhibits senescence"] < 949
    assert "CDKN2A" in sets["CellAge: induces senescence"]
