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

