"""Epoch time and training throughput of the Precious1GPT clock (TabTransformer, and the plain
MLP beside it) at the cohort sizes of the ``default`` and ``paper`` profiles.

Run: ``python benchmarks/transformer_epoch_time.py`` (``--sizes quick`` for a smoke run;
``--epochs N``). Each fit uses the paper's hyperparameters (batch 96) on a random table of the
profile's shape (samples x genes, tissue and modality categories): epoch time depends on the
shape, not on the values. Prints, per size, model and device, the set-up time of a fit
(pytorch-tabular builds its config with every gene name), the first epoch's time, the median
time of the later epochs (training and validation) and training samples per second, then the
ratios measured side by side. Where torch sees a GPU, Lightning trains on it (the device
column says which).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.precious1gpt import cohorts, simulator, transformer_clock


def random_table(n_samples: int, n_genes: int, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """A table shaped like the clock's input: z-scored genes, tissue, modality, age."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    table = pd.DataFrame(rng.standard_normal((n_samples, n_genes), dtype=np.float32),
                         columns=genes)
    table["tissue"] = rng.choice([f"T{i}" for i in range(40)], n_samples)
    table["modality"] = rng.choice(["methylation", "expression"], n_samples)
    table["age"] = rng.uniform(0, 100, n_samples).astype(np.float32)
    return table, genes


def epoch_timer():
    """A Lightning callback recording the wall time of every epoch."""
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.times, self.first_batch = [], None

        def on_train_epoch_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.first_batch is None:
                self.first_batch = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.times.append(time.perf_counter() - self.start)

    return EpochTimer()


def measure(kind: str, table: pd.DataFrame, genes: list[str], epochs: int) -> dict:
    """Set-up time, median epoch time and training samples per second of one fit."""
    n_train = int(len(table) * 0.9)
    train, valid = table.iloc[:n_train], table.iloc[n_train:]
    timer = epoch_timer()
    with tempfile.TemporaryDirectory() as tmp:
        training = transformer_clock.Training(max_epochs=epochs, patience=epochs + 1, seed=0,
                                              workdir=Path(tmp), progress=False)
        start = time.perf_counter()
        transformer_clock.fit(kind, {}, train, valid, genes,
                              training, callbacks=[timer])
    epoch = statistics.median(timer.times[1:] or timer.times)
    return {"model": kind, "samples": len(table), "genes": len(genes),
            "setup_s": round(timer.first_batch - start, 1),
            "first_epoch_s": round(timer.times[0], 2), "epoch_s": round(epoch, 2),
            "samples_per_s": round(n_train / epoch)}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["default", "paper"])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    design = cohorts.load_design()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; torch threads: {torch.get_num_threads()}")
    rows = []
    for size in args.sizes:
        sizes = simulator.profile_sizes(size, design)
        table, genes = random_table(sizes["n_methylation"] + sizes["n_expression"],
                                    sizes["n_genes"])
        for kind in transformer_clock.KINDS:
            rows.append({"size": size, "device": device,
                         **measure(kind, table, genes, args.epochs)})
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows).set_index(["size", "model"])
    print("\n" + frame.to_string())
    epoch = frame["epoch_s"]
    if len(args.sizes) > 1:
        big, small = args.sizes[-1], args.sizes[0]
        for kind in transformer_clock.KINDS:
            print(f"{kind}: epoch time {big} / {small} = "
                  f"{epoch[(big, kind)] / epoch[(small, kind)]:.1f}x")
    for size in args.sizes:
        print(f"{size}: epoch time TabTransformer / MLP = "
              f"{epoch[(size, 'tabtransformer')] / epoch[(size, 'mlp')]:.2f}x")


if __name__ == "__main__":
    main()
