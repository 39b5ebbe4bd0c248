"""Readers of the paper's own sources (EWAS Data Hub, GTEx v8 GCT, GEO series matrix) on small
files in the real formats that the tests write, including malformed variants."""

import gzip
import zipfile

import numpy as np
import pytest

from helpers.data import ewas_datahub, geo, gtex
from helpers.data.formats import DataFormatError

# --- EWAS Data Hub ------------------------------------------------------------------------

EWAS_ROWS = [
    "sample_id\tGSM1\tGSM2\tGSM3",
    "age\t0\t45.5\t101",
    "tissue\tblood\tsaliva\tbrain",
    "cg00000001\t0.10\t0.20\tNA",
    "cg00000002\t0.55\t0.60\t0.65",
    "cg00000003\t0.90\t0.80\t0.70",
]
SHEET = "sample_id\tage\ttissue\tproject_id\nGSM1\t0\tblood\tGSE1\nGSM2\t45.5\tsaliva\tGSE2\n" \
        "GSM3\t101\tbrain\tGSE2\n"


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def _zip(path, name, text):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, text)
    return path


def test_ewas_matrix_reads_samples_metadata_and_missing_values(tmp_path):
    path = _zip(tmp_path / "age_methylation_v1.zip", "age_methylation_v1.txt",
                "\n".join(EWAS_ROWS) + "\n")
    adata = ewas_datahub.read_age_matrix(path)
    assert adata.shape == (3, 3)
    assert list(adata.obs["age"]) == [0.0, 45.5, 101.0]
    assert list(adata.obs["tissue"]) == ["blood", "saliva", "brain"]
    assert np.isnan(adata[2, "cg00000001"].X).all() and adata.uns["missing_values"] == 1
    assert adata[1, "cg00000002"].X.item() == pytest.approx(0.60)


def test_ewas_matrix_keeps_only_requested_probes(tmp_path):
    path = _write(tmp_path / "m.txt", EWAS_ROWS)
    adata = ewas_datahub.read_age_matrix(path, probes=["cg00000003", "cg99999999"])
    assert list(adata.var_names) == ["cg00000003"]


def test_ewas_sample_sheet_is_joined(tmp_path):
    matrix = ewas_datahub.read_age_matrix(_write(tmp_path / "m.txt", EWAS_ROWS))
    sheet_path = _zip(tmp_path / "s.zip", "sample_age_methylation_v1.txt", SHEET)
    joined = ewas_datahub.join_sample_sheet(matrix, ewas_datahub.read_sample_sheet(sheet_path),
                                            sheet_path)
    assert list(joined.obs["project_id"]) == ["GSE1", "GSE2", "GSE2"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r[:-1] + ["cg00000003\t0.90\t0.80"], "line 6 .*cg00000003.*truncated"),
    (lambda r: r[:4] + ["cg00000002\t0.55\tabc\t0.65"] + r[5:], "non-numeric.*cg00000002"),
    (lambda r: r[:4] + ["cg00000002\t0.55\t1.60\t0.65"] + r[5:], r"outside \[0, 1\].*cg00000002"),
    (lambda r: [r[0], "age\t0\tNA\t101"] + r[2:], "missing value in field 'age'.*GSM2"),
    (lambda r: [r[0], "age\t0\tforty\t101"] + r[2:], "non-numeric field 'age'.*GSM2"),
    (lambda r: ["sample_id\tGSM1\tGSM1\tGSM3"] + r[1:], "duplicated sample ids.*GSM1"),
    (lambda r: r + ["cg00000002\t0.5\t0.5\t0.5"], "duplicated probe ids.*cg00000002"),
    (lambda r: [r[0]] + r[2:], "no metadata field 'age'"),
])
def test_ewas_matrix_malformed_inputs_name_file_and_field(tmp_path, edit, message):
    path = _write(tmp_path / "bad_matrix.txt", edit(list(EWAS_ROWS)))
    with pytest.raises(DataFormatError, match=f"bad_matrix.txt.*{message}"):
        ewas_datahub.read_age_matrix(path)


def test_ewas_sheet_disagreeing_age_or_missing_sample_is_an_error(tmp_path):
    matrix = ewas_datahub.read_age_matrix(_write(tmp_path / "m.txt", EWAS_ROWS))
    wrong = _write(tmp_path / "sheet.txt", SHEET.replace("45.5", "46").splitlines())
    with pytest.raises(DataFormatError, match="sheet.txt: field 'age' disagrees.*GSM2"):
        ewas_datahub.join_sample_sheet(matrix, ewas_datahub.read_sample_sheet(wrong), wrong)
    short = _write(tmp_path / "short.txt", SHEET.splitlines()[:3])
    with pytest.raises(DataFormatError, match="short.txt: field 'sample_id' lacks 1"):
        ewas_datahub.join_sample_sheet(matrix, ewas_datahub.read_sample_sheet(short), short)
    dup = _write(tmp_path / "dup.txt", SHEET.splitlines() + ["GSM3\t101\tbrain\tGSE2"])
    with pytest.raises(DataFormatError, match="dup.txt: duplicated sample ids"):
        ewas_datahub.read_sample_sheet(dup)


# --- GTEx v8 -------------------------------------------------------------------------------

GCT = [
    "#1.2",
    "3\t3",
    "Name\tDescription\tGTEX-1117F-0226-SM-5GZZ7\tGTEX-1117F-0426-SM-5EGHI\tGTEX-111CU-0126-SM-5GZWZ",
    "ENSG00000223972.5\tDDX11L1\t0\t0.0\t0.1",
    "ENSG00000227232.5\tWASH7P\t4.06403\t12.1854\t10.7",
    "ENSG00000243485.5\tMIR1302-2HG\t0\t0\t0.2",
]
ATTRIBUTES = [
    "SAMPID\tSMATSSCR\tSMTS\tSMTSD\tSMGEBTCH\tSMAFRZE",
    "GTEX-1117F-0226-SM-5GZZ7\t0\tAdipose Tissue\tAdipose - Subcutaneous\tLCSET-4804\tRNASEQ",
    "GTEX-1117F-0426-SM-5EGHI\t0\tMuscle\tMuscle - Skeletal\tLCSET-4764\tRNASEQ",
    "GTEX-111CU-0126-SM-5GZWZ\t1\tMuscle\tMuscle - Skeletal\tLCSET-4804\tRNASEQ",
]
PHENOTYPES = ["SUBJID\tSEX\tAGE\tDTHHRDY", "GTEX-1117F\t2\t60-69\t4", "GTEX-111CU\t1\t50-59\t0"]


def _gtex_files(tmp_path, gct=GCT, attributes=ATTRIBUTES, phenotypes=PHENOTYPES):
    gct_path = tmp_path / "gene_tpm.gct.gz"
    with gzip.open(gct_path, "wt") as stream:
        stream.write("\n".join(gct) + "\n")
    return (gct_path, _write(tmp_path / "SampleAttributesDS.txt", attributes),
            _write(tmp_path / "SubjectPhenotypesDS.txt", phenotypes))


def test_gtex_reads_tpm_with_tissue_and_age_bracket(tmp_path):
    adata = gtex.read_gtex(*_gtex_files(tmp_path), tissues=["Muscle"])
    assert adata.shape == (2, 3)
    assert list(adata.obs["subject"]) == ["GTEX-1117F", "GTEX-111CU"]
    assert list(adata.obs["age_bracket"]) == ["60-69", "50-59"]
    assert list(adata.obs["age_midpoint"]) == [65.0, 55.0]
    assert adata.obs["age_midpoint"].dtype == float
    assert list(adata.obs["sex"]) == ["female", "male"]
    assert adata.var.loc["ENSG00000227232.5", "Description"] == "WASH7P"
    assert adata[0, "ENSG00000227232.5"].X.item() == pytest.approx(12.1854)


@pytest.mark.parametrize(("which", "edit", "message"), [
    ("gct", lambda r: r[:-1], "gene_tpm.gct.gz: 2 gene rows, line 2 declares 3"),
    ("gct", lambda r: r[:4] + ["ENSG00000227232.5\tWASH7P\t4.1\tx\t1"] + r[5:],
     "non-numeric value in sample field 'GTEX-1117F-0426-SM-5EGHI'"),
    ("gct", lambda r: r[:4] + ["ENSG00000227232.5\tWASH7P\t4.1\t-2\t1"] + r[5:],
     "negative value in sample field 'GTEX-1117F-0426-SM-5EGHI'"),
    ("gct", lambda r: r[:5] + ["ENSG00000227232.5\tWASH7P\t0\t0\t0"],
     "duplicated ids in field 'Name'"),
    ("gct", lambda r: ["#1.3"] + r[1:], "not the GCT version #1.2"),
    ("phenotypes", lambda r: r[:2] + ["GTEX-111CU\t1\t\t0"], "missing field 'AGE'.*GTEX-111CU"),
    ("phenotypes", lambda r: r[:2] + ["GTEX-111CU\t1\tfifty\t0"], "field 'AGE'.*not a decade"),
    ("phenotypes", lambda r: r + ["GTEX-111CU\t1\t50-59\t0"], "duplicated ids in field 'SUBJID'"),
    ("phenotypes", lambda r: r[:2], "no subject phenotypes for samples.*GTEX-111CU"),
    ("attributes", lambda r: r + [r[-1]], "duplicated ids in field 'SAMPID'"),
    ("attributes", lambda r: [r[0].replace("SMTS\t", "TISSUE\t")] + r[1:],
     r"missing field\(s\) \['SMTS'\]"),
])
def test_gtex_malformed_inputs_name_file_and_field(tmp_path, which, edit, message):
    files = {"gct": GCT, "attributes": ATTRIBUTES, "phenotypes": PHENOTYPES}
    files[which] = edit(list(files[which]))
    with pytest.raises(DataFormatError, match=message):
        gtex.read_gtex(*_gtex_files(tmp_path, **files))


# --- GEO series matrix ------------------------------------------------------------------------

SERIES = [
    '!Series_title\t"DNA methylation during reprogramming"',
    '!Series_geo_accession\t"GSE00001"',
    "",
    '!Sample_title\t"HDF day 0"\t"HDF day 7"\t"iPSC"',
    '!Sample_geo_accession\t"GSM100"\t"GSM101"\t"GSM102"',
    '!Sample_source_name_ch1\t"fibroblast"\t"reprogramming cells"\t"iPS cells"',
    '!Sample_characteristics_ch1\t"cell type: HDF"\t"cell type: HDF"\t"cell type: iPSC"',
    '!Sample_characteristics_ch1\t"time point: day 0"\t"time point: day 7"\t""',
    '!Sample_characteristics_ch1\t"gestational age (weeks): 9"\t"gender: F"\t"gender: M"',
    "!series_matrix_table_begin",
    '"ID_REF"\t"GSM100"\t"GSM101"\t"GSM102"',
    '"cg00000029"\t0.52\t0.47\t0.12',
    '"cg00000108"\t0.95\tnull\t0.91',
    "!series_matrix_table_end",
]


def test_series_matrix_parses_characteristics_into_columns(tmp_path):
    path = tmp_path / "GSE00001_series_matrix.txt.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join(SERIES) + "\n")
    adata = geo.read_series_matrix(path, value_range=(0, 1))
    assert list(adata.obs_names) == ["GSM100", "GSM101", "GSM102"]
    assert list(adata.obs["time point"]) == ["day 0", "day 7", None]
    assert list(adata.obs["gender"]) == [None, "F", "M"]
    assert adata.obs.loc["GSM100", "gestational age (weeks)"] == "9"
    assert list(adata.obs["title"]) == ["HDF day 0", "HDF day 7", "iPSC"]
    assert adata.uns["missing_values"] == 1
    assert adata[2, "cg00000029"].X.item() == pytest.approx(0.12)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r[:-1], "no !series_matrix_table_end line"),
    (lambda r: r[:9], "no !series_matrix_table_begin line"),
    (lambda r: r[:11] + ['"cg00000029"\t0.52\t0.47'] + r[12:], "row 2.*2 values for 3 samples"),
    (lambda r: r[:11] + ['"cg00000029"\t0.52\tabc\t0.1'] + r[12:], "non-numeric.*cg00000029"),
    (lambda r: r[:11] + ['"cg00000029"\t0.52\t1.7\t0.1'] + r[12:], "outside.*cg00000029"),
    (lambda r: r[:12] + ['"cg00000029"\t0.5\t0.5\t0.5'] + r[13:], "duplicated ids.*ID_REF"),
    (lambda r: r[:4] + ['!Sample_geo_accession\t"GSM100"\t"GSM100"\t"GSM102"'] + r[5:],
     "duplicated ids in field '!Sample_geo_accession'"),
    (lambda r: r[:8] + ['!Sample_characteristics_ch1\t"day 7"\t""\t""'] + r[9:],
     "'day 7' of sample 'GSM100' is not 'key: value'"),
])
def test_series_matrix_malformed_inputs_name_file_and_field(tmp_path, edit, message):
    path = _write(tmp_path / "bad_series_matrix.txt", edit(list(SERIES)))
    with pytest.raises(DataFormatError, match=f"bad_series_matrix.txt.*{message}"):
        geo.read_series_matrix(path, value_range=(0, 1))
