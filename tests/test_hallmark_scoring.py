"""The one-pass scorer against scanpy's score_genes, and the quantile labels."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from helpers.hallmarkage import hallmark_scoring, hallmark_states


def toy_cells(n_cells=600, n_genes=400, seed=3):
    """Log-normalised negative-binomial counts with a spread of gene means (sparse)."""
    rng = np.random.default_rng(seed)
    means = np.exp(rng.normal(-1, 1.5, n_genes))
    counts = rng.poisson(rng.gamma(2.0, means / 2.0, (n_cells, n_genes))).astype(np.float32)
    adata = ad.AnnData(sp.csr_matrix(counts),
                       var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]))
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


def gene_sets(adata, n_sets=12, seed=5):
    rng = np.random.default_rng(seed)
    names = list(adata.var_names)
    return {f"set{j}": list(rng.choice(names, rng.integers(3, 40), replace=False))
            for j in range(n_sets)}


@pytest.mark.parametrize("random_state", [0, 7])
def test_one_pass_scores_equal_score_genes(random_state):
    adata = toy_cells()
    sets = gene_sets(adata)
    sets["with_absent_gene"] = ["G1", "G2", "G3", "NOT_A_GENE"]
    reference = hallmark_scoring.score_with_scanpy(adata, sets, random_state=random_state)
    one_pass = hallmark_scoring.score_gene_sets(adata, sets, random_state=random_state)
    assert list(one_pass.columns) == [f"score_{name}" for name in sets]
    assert np.abs(reference.to_numpy() - one_pass.to_numpy()).max() <= 1e-6
    assert reference.std().min() > 0.01  # the scores are not trivially zero


def test_one_pass_scores_equal_score_genes_on_dense_data():
    adata = toy_cells(n_cells=200)
    adata.X = adata.X.toarray()
    sets = gene_sets(adata, n_sets=4)
    reference = hallmark_scoring.score_with_scanpy(adata, sets)
    one_pass = hallmark_scoring.score_gene_sets(adata, sets)
    assert np.abs(reference.to_numpy() - one_pass.to_numpy()).max() <= 1e-6


def test_scorer_refuses_nan_and_sets_without_genes():
    adata = toy_cells(n_cells=50)
    with pytest.raises(ValueError, match="no gene in the data"):
        hallmark_scoring.score_gene_sets(adata, {"empty": ["NOPE"]})
    adata.X = adata.X.toarray()
    adata.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hallmark_scoring.score_gene_sets(adata, {"s": ["G1", "G2", "G3"]})


def test_labels_and_masks_follow_the_quantile_rules_exactly():
    scores = pd.DataFrame({"score_F__h": np.arange(100, dtype=float)[::-1]})
    labels, summary = hallmark_states.binarise(scores, gmm=False)
    values = scores["score_F__h"].to_numpy()
    q20, q80 = np.quantile(values, [0.2, 0.8])
    assert (labels["label_q80_F__h"].to_numpy() == (values > q80)).all()
    assert labels["label_q80_F__h"].sum() == 20
    extreme = labels["label_extreme_F__h"].to_numpy()
    assert (extreme[values > q80] == 1).all() and (extreme[values < q20] == 0).all()
    middle = (values >= q20) & (values <= q80)
    assert np.isnan(extreme[middle]).all()
    assert (labels["mask_extreme_F__h"].to_numpy() == ~middle).all()
    assert summary.loc[0, "extreme_cells"] == 40


def test_gmm_labels_the_high_component_and_reports_a_failed_fit():
    rng = np.random.default_rng(0)
    bimodal = np.r_[rng.normal(0, 0.3, 300), rng.normal(3, 0.3, 100)]
    labels = hallmark_states.gmm_label(bimodal)
    assert labels[:300].mean() < 0.02 and labels[300:].mean() > 0.98
    constant_but_one = np.r_[np.zeros(400), 1.0]
    assert hallmark_states.gmm_label(constant_but_one) is None


def test_training_thresholds_are_applied_unchanged():
    label = hallmark_states.extreme_label([0.0, 0.5, 1.0, 2.0], thresholds=(0.4, 1.5))
    assert label[0] == 0 and np.isnan(label[1]) and np.isnan(label[2]) and label[3] == 1
