"""Training speed of the Precious1GPT clock: the book's fit against a plain PyTorch loop over the
same network on the same tensors, and against pytorch-tabular's own Trainer path, side by side.

Run: ``python benchmarks/transformer_epoch_time.py`` (``--sizes default paper``, or a shape such
as ``6000x5000`` samples x genes; ``--epochs N``; ``--sizes quick`` for a smoke run). Each fit
uses the paper's hyperparameters (batch 96) on a random table of the profile's shape (samples x
genes, tissue and modality categories): epoch time depends on the shape, not on the values.
For each size and model it measures, in this
order and in one process:

- ``plain``: a bare loop (shuffle, forward, MSE, backward, AdamW step) over pytorch-tabular's
  network and the same tensors, no validation: the floor;
- ``fit``: :func:`helpers.precious1gpt.transformer_clock.fit` on a new split (set-up includes
  preparing the split) and again on the same split (what every trial of a study after the
  first pays); its epochs include the validation MAE after each epoch;
- ``lightning``: :func:`helpers.precious1gpt.transformer_clock.lightning_fit`, the library's
  ``TabularModel.fit`` (Lightning's Trainer, checkpoint files).

It prints the median epoch time of each, the set-up times (start of the call to the first
batch) and the ratios: epoch time of ``fit`` / ``plain`` (goal <= 1.5) and of ``lightning`` /
``plain``. The device line says whether torch trains on a GPU (every fit uses one when it sees
it).
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
    """A Lightning callback recording the wall time from one epoch's start to the next's (the
    validation pass and checkpointing included) and the time of the first batch."""
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.starts, self.first_batch = [], None

        def on_train_epoch_start(self, trainer, pl_module):
            self.starts.append(time.perf_counter())

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.first_batch is None:
                self.first_batch = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            self.starts.append(time.perf_counter())

    return EpochTimer()


def plain_loop(kind: str, split, training, epochs: int) -> list[float]:
    """Seconds per epoch of a bare training loop over pytorch-tabular's network."""
    import torch

    hp = transformer_clock.PAPER_HYPERPARAMETERS
    network, _ = transformer_clock.build_network(kind, hp, split, training)
    to = transformer_clock.device()
    network.to(to).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=hp["learning_rate"])
    fit = split.tensors["fit"]
    x = {k: fit[k].to(to) for k in ("continuous", "categorical")}
    y = fit["target"].to(to)
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=generator)
        for first in range(0, len(y), hp["batch_size"]):
            rows = order[first:first + hp["batch_size"]]
            out = network({k: v[rows] for k, v in x.items()})["logits"]
            loss = torch.nn.functional.mse_loss(out, y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def measure(kind: str, table: pd.DataFrame, genes: list[str], epochs: int) -> dict:
    """Median epoch seconds and set-up seconds of the plain loop, the book's fit (new and
    reused split) and the library's Trainer path, one after the other."""
    n_train = int(len(table) * 0.9)
    train, valid = table.iloc[:n_train], table.iloc[n_train:]
    transformer_clock._prepared.clear()
    with tempfile.TemporaryDirectory() as tmp:
        training = transformer_clock.Training(max_epochs=epochs, patience=epochs + 1, seed=0,
                                              workdir=Path(tmp), progress=False)
        first = transformer_clock.fit(kind, {}, train, valid, genes, training)
        again = transformer_clock.fit(kind, {}, train, valid, genes, training)
        split = next(reversed(transformer_clock._prepared.values()))
        plain = plain_loop(kind, split, training, epochs)
        timer = epoch_timer()
        start = time.perf_counter()
        transformer_clock.lightning_fit(kind, {}, train, valid, genes, training,
                                        callbacks=[timer])
    lightning = list(np.diff(timer.starts))

    def median(times):
        return statistics.median(times[1:] or times)

    return {"model": kind, "samples": len(table), "genes": len(genes),
            "plain_epoch_s": median(plain), "fit_epoch_s": median(again.epoch_seconds),
            "lightning_epoch_s": median(lightning),
            "fit_setup_new_split_s": first.setup_seconds,
            "fit_setup_same_split_s": again.setup_seconds,
            "lightning_setup_s": timer.first_batch - start}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["default"])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    design = cohorts.load_design()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; torch threads: {torch.get_num_threads()}")
    rows = []
    for size in args.sizes:
        if "x" in size:
            n_samples, n_genes = (int(v) for v in size.split("x"))
        else:
            sizes = simulator.profile_sizes(size, design)
            n_samples, n_genes = sizes["n_methylation"] + sizes["n_expression"], sizes["n_genes"]
        table, genes = random_table(n_samples, n_genes)
        for kind in transformer_clock.KINDS:
            rows.append({"size": size, "device": device,
                         **measure(kind, table, genes, args.epochs)})
    frame = pd.DataFrame(rows).set_index(["size", "model"])
    frame["fit / plain"] = frame["fit_epoch_s"] / frame["plain_epoch_s"]
    frame["lightning / plain"] = frame["lightning_epoch_s"] / frame["plain_epoch_s"]
    print("\n" + frame.round(2).to_string())
    for (size, kind), row in frame.iterrows():
        print(f"{size} {kind}: epoch time fit / plain loop = {row['fit / plain']:.2f}x "
              f"(goal <= 1.5x; pytorch-tabular's Trainer: {row['lightning / plain']:.2f}x); "
              f"set-up {row['fit_setup_same_split_s']:.2f} s on a prepared split, "
              f"{row['fit_setup_new_split_s']:.2f} s on a new one (goal <= 2 s; Trainer path "
              f"{row['lightning_setup_s']:.2f} s)")


if __name__ == "__main__":
    main()
