"""Loaders of the real files: shapes, provenance, and errors that name the file and field."""

import numpy as np
import pandas as pd
import pytest

from helpers.data import formats, gtex, loaders
from helpers.data.formats import DataFormatError
from tests.conftest import requires_real_data


@requires_real_data
def test_gse30870_is_16_real_blood_methylomes():
    adata = loaders.load_gse30870()
    assert adata.shape == (16, 21368)
    assert (adata.obs["age"] == 0).sum() == 3
    assert adata.obs["age"].max() == 103
    assert 0 <= adata.X.min() and adata.X.max() <= 1
    assert adata.uns["provenance"]["data"] == "real"
    assert adata.uns["provenance"]["sha256"].startswith("23c87569")


@requires_real_data
def test_gtex_muscle_counts_and_traits_align():
    adata = loaders.load_gtex_muscle()
    assert adata.shape == (50, 15000)
    assert adata.var_names[0].startswith("ENSG")
    assert set(adata.obs["sex"]) <= {"male", "female"}
    low = adata.obs["age_bracket"].str.slice(0, 2).astype(int)
    assert ((adata.obs["age_midpoint"] > low) & (adata.obs["age_midpoint"] < low + 10)).all()
    assert np.all(adata.X >= 0)


@requires_real_data
def test_gene_set_and_annotation_tables():
    reactome = loaders.load_reactome_pathways()
    assert len(reactome) == 2512
    assert reactome["reactome_id"].str.startswith("R-HSA-").all()
    hallmarks = loaders.load_opengenes_hallmarks()
    assert len(hallmarks) == 2403
    assert (hallmarks["terms"].str.len() > 0).sum() == 1066
    assert hallmarks["terms"].explode().nunique() == 21
    tss = loaders.load_refseq_tss()
    assert len(tss) == 28029 and set(tss["strand"]) == {"+", "-"}
    gencode = loaders.load_gencode_v26()
    assert len(gencode) == 58219 and gencode.attrs["license"].startswith("GPL-3")


@pytest.mark.parametrize("value, message", [
    (1.2, "beta value outside \\[0, 1\\] in field 'cg2'"),
    ("high", "non-numeric beta value in field 'cg2'"),
    (np.nan, "missing beta value in field 'cg2'"),
])
def test_bad_beta_values_name_the_file_and_cpg(value, message):
    betas = pd.DataFrame({"cg1": [0.1, 0.2], "cg2": [0.5, value]}, dtype=object)
    with pytest.raises(DataFormatError, match=f"matrix.csv: {message}"):
        formats.check_beta_values(betas, "matrix.csv")


def test_age_bracket_midpoint():
    assert gtex.age_bracket_midpoint("60-69") == 65.0
    assert gtex.age_bracket_midpoint(" 20 - 29 ") == 25.0
    with pytest.raises(ValueError, match="not an age bracket"):
        gtex.age_bracket_midpoint("sixty")


def test_open_genes_cells_split_on_quotes_not_commas():
    cell = "'Hypercholesterolemia, familial','Laron syndrome'"
    assert loaders._split_quoted_list(cell) == ("Hypercholesterolemia, familial",
                                                "Laron syndrome")
    assert loaders._split_quoted_list(np.nan) == ()


def test_pbmc68k_reduced_is_read_after_its_hash_is_checked():
    from helpers.data import loaders as pbmc_loaders

    adata = pbmc_loaders.load_pbmc68k_reduced()
    assert adata.shape == (700, 765)
    assert adata.obs["cell_type"].nunique() == 10
    assert adata.uns["provenance"]["data"] == "real"
    assert float(adata.X.min()) >= 0  # log-normalised expression, not the scaled matrix



def test_age_text_is_parsed_or_refused_by_name():
    assert formats.parse_age_text("55 yr", "x") == (55.0, pytest.approx(np.nan, nan_ok=True))
    age, weeks = formats.parse_age_text("21wk", "x")
    assert weeks == 21 and age == pytest.approx((21 - 40) / 52.18)
    for bad in ("12+3 weeks", "12-14 weeks", "week 2", "", "nan", "3 wk"):
        with pytest.raises(DataFormatError, match="sheet.pkl: sample GSM1, field age"):
            formats.parse_age_text(bad, "sheet.pkl: sample GSM1, field age")


@requires_real_data
def test_gse69852_livers_with_parsed_ages():
    adata = loaders.load_gse69852()
    assert adata.shape == (6, 485512)
    fetal = adata.obs["source"] == "Fetal Liver"
    assert fetal.sum() == 3 and (adata.obs.loc[fetal, "age"] < 0).all()
    assert sorted(adata.obs.loc[~fetal, "age"]) == [55.0, 56.0, 65.0]
    assert sorted(adata.obs.loc[fetal, "gestational_weeks"]) == [20.0, 21.0, 22.0]
    assert adata.uns["provenance"]["betas"]["sha256"].startswith("4409451f")


@requires_real_data
def test_gtex_expression_sets_load_with_donor_tissue_and_age():
    skin = loaders.load_gtex_expression_set("gtex_yarn_skin")
    bladder = loaders.load_gtex_expression_set("gtex_yarn_bladder")
    assert skin.shape == (20, 40824) and bladder.shape == (11, 39377)
    assert skin.obs["tissue"].value_counts()["Cells - Transformed fibroblasts"] == 13
    assert set(bladder.obs["age_bracket"]) <= {"20-29", "30-39", "40-49", "50-59"}
    assert (skin.obs["age"] == skin.obs["age_bracket"].map(gtex.age_bracket_midpoint)).all()
