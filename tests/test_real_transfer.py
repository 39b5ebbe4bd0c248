"""Array cohorts reach the real regressor's RNA-seq scale by quantile mapping onto its training
distribution; a gene the regressor needs and the arrays lack is an error; the expression space
is what GTEx expresses and the arrays measure."""

from __future__ import annotations

from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.common.clocks import MissingFeaturesError
from helpers.precious1gpt import multimodal, real_transfer, transfer


def _regressor(genes, reference):
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(5, 1, (6, len(genes))), columns=genes,
                         index=[f"t{i}" for i in range(6)])
    obs = pd.DataFrame({"tissue": "Muscle"}, index=train.index)
    space = multimodal.fit_feature_space({"expression": train}, obs)
    space.tissues = ["Brain", "Muscle"]
    return SimpleNamespace(space=space, about={"expression_reference": list(reference)})


def _arrays(values, genes, case):
    obs = pd.DataFrame({"case": case}, index=[f"GSM{i}" for i in range(len(case))])
    return ad.AnnData(X=np.asarray(values, dtype=float), obs=obs,
                      var=pd.DataFrame(index=genes))


def test_arrays_are_mapped_rank_for_rank_onto_the_training_distribution():
    genes = ["A", "B", "C"]
    regressor = _regressor(genes, reference=[2.0, 4.0, 8.0])
    arrays = _arrays([[10.0, 7.0, 12.0], [3.0, 9.0, 1.0]], genes, [True, False])
    table = real_transfer.pd_table(regressor, arrays)
    mean = regressor.space.scale["expression_mean"]
    sd = regressor.space.scale["expression_sd"]
    mapped_back = table[genes] * sd + mean  # undo the regressor's scaling
    np.testing.assert_allclose(mapped_back.loc["GSM0"], [4.0, 2.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(mapped_back.loc["GSM1"], [4.0, 8.0, 2.0], rtol=1e-6)
    assert table["tissue"].eq("Brain").all() and table["modality"].eq("expression").all()
    assert table[transfer.LABEL].tolist() == [1, 0]


def test_a_gene_the_regressor_needs_is_never_filled_in():
    regressor = _regressor(["A", "B", "C"], reference=[1.0, 2.0, 3.0])
    arrays = _arrays([[1.0, 2.0], [2.0, 1.0]], ["A", "B"], [True, False])
    with pytest.raises(MissingFeaturesError, match="GSE7621 lacks 1 of the regressor's 3"):
        real_transfer.pd_table(regressor, arrays)


def test_expression_space_keeps_expressed_genes_the_arrays_measure():
    gtex = pd.DataFrame({"A": [5.0, 6.0], "B": [0.0, 0.5], "C": [3.0, 4.0], "D": [2.0, 2.0]})
    genes, report = real_transfer.expression_space(gtex, pd.Index(["A", "B", "D", "Z"]))
    assert list(genes) == ["A", "D"]
    assert report["genes"].tolist() == [4, 3, 2]
