"""SHAP time per 100 explained samples for the Precious1GPT regressor at the gene counts of the
``default`` and ``paper`` profiles, and the gain of the book's wrapper over a naive one.

Run: ``python benchmarks/shap_time.py`` (``--sizes quick`` for a smoke run). For each size a
TabTransformer with the paper's head is fitted for one epoch on a random table with the
profile's number of genes (SHAP time depends on the network and the gene count, not on how well
it is trained), then ``shap.GradientExplainer`` (200 expected-gradient samples, 50 background
rows) explains 100 samples of one tissue and modality through two wrappers measured side by
side: the book's (``helpers.precious1gpt.importance.gene_response``: the categorical part,
which attention computes from tissue and modality alone, is computed once) and a naive one
that runs the whole network, attention included, on every call. Both must give the same SHAP values.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from transformer_epoch_time import random_table

from helpers.precious1gpt import cohorts, importance, simulator, transfer, transformer_clock


def naive_wrapper(tabular_model, codes: np.ndarray):
    """The whole network as a function of the genes, categorical codes fixed."""
    import torch

    network = tabular_model.model.eval()
    transform = tabular_model.datamodule.target_transforms[0]
    scale, shift = float(transform.scale_[0]), float(transform.mean_[0])

    class Whole(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network
            self.register_buffer("codes", torch.as_tensor(codes).reshape(1, -1))

        def forward(self, genes):
            x = {"continuous": genes, "categorical": self.codes.expand(len(genes), -1)}
            return self.network(x)["logits"] * scale + shift

    return Whole()


def fitted_model(n_genes: int, n_samples: int = 600):
    """A TabTransformer regressor (paper head) fitted for one epoch on random data."""
    table, genes = random_table(n_samples, n_genes)
    table["tissue"] = np.where(np.arange(n_samples) % 2 == 0, "Blood", "Brain")
    split = int(n_samples * 0.8)
    with tempfile.TemporaryDirectory() as tmp:
        training = transformer_clock.Training(max_epochs=1, patience=2, seed=0,
                                              workdir=Path(tmp), progress=False)
        result = transformer_clock.fit("tabtransformer", {}, table.iloc[:split],
                                       table.iloc[split:], genes, training)
    return result.model, table, genes


def time_shap(wrapper, rows: pd.DataFrame, background: pd.DataFrame, genes: list[str]
              ) -> tuple[float, np.ndarray]:
    """Seconds for one SHAP run over ``rows``, and the values."""
    start = time.perf_counter()
    values = importance.shap_group(wrapper, rows, background, genes, nsamples=200, seed=0)
    return time.perf_counter() - start, values.to_numpy()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["default", "paper"])
    args = parser.parse_args()
    design = cohorts.load_design()
    device = "CPU"
    print(f"device: {device}; torch threads: {torch.get_num_threads()}")
    rows = []
    for size in args.sizes:
        n_genes = simulator.profile_sizes(size, design)["n_genes"]
        model, table, genes = fitted_model(n_genes)
        group = table[(table["tissue"] == "Blood") & (table["modality"] == "methylation")]
        explained, background = group.iloc[:100], group.iloc[100:150]
        book = importance.wrapper_for(model, explained, "years")
        codes = transfer.category_codes(model.datamodule.categorical_encoder, explained[:1])
        naive = naive_wrapper(model, codes[0])
        book_s, book_values = time_shap(book, explained, background, genes)
        naive_s, naive_values = time_shap(naive, explained, background, genes)
        gap = float(np.abs(book_values - naive_values).max())
        rows.append({"size": size, "genes": n_genes, "explained": len(explained),
                     "book_wrapper_s_per_100": round(book_s * 100 / len(explained), 2),
                     "naive_wrapper_s_per_100": round(naive_s * 100 / len(explained), 2),
                     "max_abs_difference": gap})
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows).set_index("size")
    print("\n" + frame.to_string())
    for size, row in frame.iterrows():
        print(f"{size}: naive / book wrapper = "
              f"{row['naive_wrapper_s_per_100'] / row['book_wrapper_s_per_100']:.1f}x")
    if len(frame) > 1:
        big, small = frame.index[-1], frame.index[0]
        per_100 = frame["book_wrapper_s_per_100"]
        print(f"book wrapper: {big} / {small} = {per_100[big] / per_100[small]:.1f}x")


if __name__ == "__main__":
    main()
