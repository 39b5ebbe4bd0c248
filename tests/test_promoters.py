"""TSS200 / TSS1500 assignment on hand-made probes, and gene-level methylation."""

import numpy as np
import pandas as pd
import pytest

from helpers.data import loaders
from helpers.precious1gpt import promoters
from tests.conftest import requires_real_data

# Gene PLUS has its TSS at 10,000 on the + strand (upstream = smaller positions); gene MINUS has
# its TSS at 50,000 on the - strand (upstream = larger positions).
TSS = pd.DataFrame({"chr": ["chr1", "chr1"], "start": [9_999, 49_999], "end": [10_000, 50_000],
                    "gene": ["PLUS", "MINUS"], "score": 0, "strand": ["+", "-"]})
PROBES = pd.DataFrame({"chr": "chr1", "pos": [
    10_000,  # at the + TSS: TSS200 of PLUS
    9_800,   # 200 bp upstream of PLUS: TSS200 (bound included)
    9_799,   # 201 bp upstream: TSS1500
    8_500,   # 1,500 bp upstream: TSS1500
    8_499,   # 1,501 bp: nothing
    10_100,  # downstream of PLUS: nothing
    50_150,  # 150 bp upstream of the - TSS: TSS200 of MINUS
    49_900,  # downstream of the - TSS (smaller position): nothing
    51_000,  # 1,000 bp upstream of MINUS: TSS1500
]}, index=[f"cg{i:08d}" for i in range(9)])
PROBES.loc["cg00000099"] = ["chr2", 10_000]  # another chromosome: nothing


def _regions(probe_map):
    return {(r.probe, r.gene): r.region for r in probe_map.itertuples()}


def test_tss_regions_are_strand_aware():
    assigned = _regions(promoters.probe_gene_map(PROBES, TSS))
    assert assigned == {
        ("cg00000000", "PLUS"): "TSS200", ("cg00000001", "PLUS"): "TSS200",
        ("cg00000002", "PLUS"): "TSS1500", ("cg00000003", "PLUS"): "TSS1500",
        ("cg00000006", "MINUS"): "TSS200", ("cg00000008", "MINUS"): "TSS1500",
    }


def test_a_probe_takes_the_region_of_its_closest_tss_of_a_gene():
    second_tss = pd.DataFrame({"chr": ["chr1"], "start": [10_699], "end": [10_700],
                               "gene": ["PLUS"], "score": 0, "strand": ["+"]})
    probe = pd.DataFrame({"chr": ["chr1"], "pos": [10_600]}, index=["cgX"])
    probe_map = promoters.probe_gene_map(probe, pd.concat([TSS, second_tss]))
    assert list(probe_map["region"]) == ["TSS200"] and list(probe_map["distance"]) == [100]


def test_bidirectional_probe_belongs_to_both_genes():
    tss = pd.DataFrame({"chr": ["chr1", "chr1"], "start": [999, 1_099], "end": [1_000, 1_100],
                        "gene": ["LEFT", "RIGHT"], "score": 0, "strand": ["-", "+"]})
    probe = pd.DataFrame({"chr": ["chr1"], "pos": [1_050]}, index=["cgB"])
    assert _regions(promoters.probe_gene_map(probe, tss)) == {
        ("cgB", "LEFT"): "TSS200", ("cgB", "RIGHT"): "TSS200"}


def test_gene_level_methylation_averages_and_reports_coverage():
    probe_map = promoters.probe_gene_map(PROBES, TSS)
    betas = pd.DataFrame({"cg00000000": [0.2, np.nan], "cg00000001": [0.4, np.nan],
                          "cg00000002": [0.9, 0.9]}, index=["s1", "s2"])
    matrix, coverage = promoters.gene_level_methylation(betas, probe_map)
    assert list(matrix.columns) == ["PLUS"]  # MINUS has no measured TSS200 probe
    assert matrix.loc["s1", "PLUS"] == pytest.approx(0.3)
    assert np.isnan(matrix.loc["s2", "PLUS"])  # all its probes missing: NaN, not imputed
    assert coverage.loc["PLUS"].tolist() == [2, 2]
    assert coverage.loc["MINUS"].tolist() == [1, 0]


def test_unknown_region_is_an_error():
    with pytest.raises(ValueError, match="TSS300"):
        promoters.gene_level_methylation(pd.DataFrame(), pd.DataFrame(
            columns=["probe", "gene", "region"]), region="TSS300")


@requires_real_data
def test_real_tss200_map_covers_about_58k_probes_and_16k_genes():
    probe_map = promoters.probe_gene_map(loaders.load_hm450_locations(),
                                         loaders.load_refseq_tss())
    summary = promoters.map_summary(probe_map)
    assert 50_000 < summary.loc["TSS200", "probes"] < 65_000
    assert 14_000 < summary.loc["TSS200", "genes"] < 18_000
    assert set(probe_map["region"]) == {"TSS200", "TSS1500"}
    assert not probe_map.duplicated(["probe", "gene"]).any()
