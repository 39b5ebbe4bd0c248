"""Hallmark gene-set frameworks: transcription rules, real symbols, the Open Genes build and the
detection report."""

import pytest

from helpers.data import formats, loaders
from helpers.hallmarkage import hallmark_sets
from tests.conftest import requires_real_data


def test_shorthand_expands_like_the_papers_tables():
    assert hallmark_sets.expand_shorthand("CHEK1/2") == ["CHEK1", "CHEK2"]
    assert hallmark_sets.expand_shorthand("DNMT1/3A/3B") == ["DNMT1", "DNMT3A", "DNMT3B"]
    assert hallmark_sets.expand_shorthand("ATG5/7/12") == ["ATG5", "ATG7", "ATG12"]
    assert hallmark_sets.expand_shorthand("CDKN1A/B") == ["CDKN1A", "CDKN1B"]
    assert hallmark_sets.expand_shorthand("COL1A1/2") == ["COL1A1", "COL1A2"]
    with pytest.raises(ValueError, match="cannot expand"):
        hallmark_sets.expand_shorthand("TP53/x-1")


def test_extraction_errors_are_corrected_before_expansion():
    corrections = hallmark_sets.read_spec()["corrections"]
    genes = hallmark_sets.genes_from_paper_text("ATGS5/7/12, RADS51; FOX03, CDKNI1A/B",
                                                corrections)
    assert genes == ["ATG5", "ATG7", "ATG12", "RAD51", "FOXO3", "CDKN1A", "CDKN1B"]


def test_every_transcribed_list_follows_from_its_paper_text():
    spec = hallmark_sets.read_spec()
    for name, framework in spec["frameworks"].items():
        for key, hallmark in framework["hallmarks"].items():
            derived = hallmark_sets.genes_from_paper_text(hallmark["paper_text"],
                                                          spec["corrections"])
            assert derived == hallmark["genes"], f"{name}/{key}"


@requires_real_data
def test_every_transcribed_symbol_is_a_real_gene():
    """Against the registry's GENCODE v26 and RefSeq symbols; lists any symbol that is not."""
    real = set(loaders.load_gencode_v26()["geneSymbol"]) | set(loaders.load_refseq_tss()["gene"])
    spec = hallmark_sets.read_spec()
    symbols = {g for fw in spec["frameworks"].values() for h in fw["hallmarks"].values()
               for g in h["genes"]}
    assert len(symbols) > 150
    not_genes = sorted(symbols - real)
    assert not_genes == [], f"not gene symbols: {not_genes}"


@requires_real_data
def test_open_genes_framework_file_is_rebuilt_from_the_registry_file():
    committed = hallmark_sets.read_opengenes_file()
    rebuilt = hallmark_sets.opengenes_mechanisms()
    assert committed.equals(rebuilt)
    assert committed["hallmark"].nunique() == 21


def test_frameworks_load_in_the_papers_order_with_seven_frameworks():
    frameworks = hallmark_sets.load_frameworks()
    assert list(frameworks) == list(hallmark_sets.FRAMEWORK_ORDER)
    assert len(frameworks["HoA2013"]) == 9 and len(frameworks["HoA2023"]) == 12
    assert len(frameworks["StemCellAging2025"]) == 5 and len(frameworks["LLMUnified"]) == 15
    assert frameworks["Overlap"]["epigenetic_aging"] == ["EZH2"]


def test_detection_report_drops_hallmarks_under_three_genes_and_uses_aliases():
    frameworks = {"F": {"a": ["X1", "X2", "X3", "X4"], "b": ["X1", "X2", "Y9"],
                        "c": ["ATP5F1A", "X1", "X2"]}}
    report = hallmark_sets.detection_report(frameworks, ["X1", "X2", "X3", "ATP5A1"],
                                            aliases={"ATP5F1A": "ATP5A1"})
    kept = report.set_index("hallmark")
    assert list(kept["n_detected"]) == [3, 2, 3]
    assert list(kept["kept"]) == [True, False, True]
    assert kept.loc["b", "missing"] == ("Y9",)
    assert hallmark_sets.kept_gene_sets(report) == {"F__a": ["X1", "X2", "X3"],
                                                    "F__c": ["ATP5A1", "X1", "X2"]}


def test_spec_without_a_field_names_it(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("corrections: {}\naliases: {}\nframeworks:\n  F:\n    hallmarks:\n"
                    "      h: {label: H, genes: [A]}\n")
    with pytest.raises(formats.DataFormatError, match=r"F/h lacks field\(s\) \['paper_text'\]"):
        hallmark_sets.read_spec(path)


def test_readable_names_and_identical_sets():
    names = hallmark_sets.readable_names(["HoA2013__stem_cell_exhaustion", "X__a_b"])
    assert names.loc["HoA2013__stem_cell_exhaustion"].tolist() == ["HoA2013",
                                                                   "stem cell exhaustion"]
    assert names.loc["X__a_b", "hallmark"] == "a b"
    sets = {"a": ["G1", "G2"], "b": ["G2", "G1"], "c": ["G1"]}
    assert hallmark_sets.identical_sets(sets) == [("a", "b")]


def test_display_names_are_human():
    from helpers.hallmarkage.hallmark_sets import FRAMEWORK_NAMES, FRAMEWORK_ORDER, display_name

    assert display_name("score_HoA2013__loss_of_proteostasis") == \
        "loss of proteostasis (Hallmarks 2013)"
    assert display_name("OpenGenesFullTSV__accumulation_of_reactive_oxygen_species") == \
        "accumulation of reactive oxygen species (Open Genes)"
    assert set(FRAMEWORK_ORDER) <= set(FRAMEWORK_NAMES)
