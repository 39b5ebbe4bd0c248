"""The Precious1GPT regressor: pytorch-tabular's TabTransformer (and its plain MLP,
CategoryEmbedding, as a baseline) trained on the shared gene space with tissue and modality as
categorical inputs and MSE loss.

pytorch-tabular's TabTransformer runs self-attention over the embedded categorical columns only
(here tissue and modality); the gene features go through BatchNorm and are concatenated to the
attention output before the MLP head (``TabTransformerBackbone.forward``). Every fit is seeded,
works inside its own folder (pytorch-tabular writes ``.pt_tmp`` and checkpoints into the working
directory) and restores the epoch with the lowest validation loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.files import locked, replace_folder, write_whole
from helpers.data.registry import sha256_of
from helpers.precious1gpt.multimodal import CATEGORICAL, FeatureSpace

TARGET = "age"
KINDS = ("tabtransformer", "mlp", "fttransformer")
# FT-Transformer (attention over every feature, the paper's equations): a small encoder, so
# that attention over a few hundred gene tokens stays affordable on a CPU
FT_ENCODER = {"input_embed_dim": 32, "num_heads": 4, "num_attn_blocks": 2}
# MSE loss (Methods); MAE logged so that early stopping and the restored epoch follow the
# validation MAE (the scaled target is a linear map of years, so its argmin is the same).
LOSS = {"loss": "MSELoss", "metrics": ["mean_absolute_error"]}
MONITOR = "valid_mean_absolute_error"
MONITOR_ROWS = 1000  # training rows whose MAE the learning curve records each epoch

# Methods, "Transformer-based model": the configuration Optuna selected in the paper.
PAPER_HYPERPARAMETERS = {
    "layers": "128-2048-128", "dropout": 0.0, "activation": "ELU", "learning_rate": 2.3e-4,
    "optimizer": "AdamW", "l1": 0.0, "l2": 0.0, "batch_size": 96,
}


MIN_STEPS_PER_EPOCH = 10  # fewer gradient steps per epoch: early stopping sees noise
MIN_VALID_SAMPLES = 20  # fewer validation samples: the best epoch is chosen on noise


class SmallCohortWarning(UserWarning):
    """A fit whose batches or validation split are too small for its settings to mean much."""


def shows_bars(progress: bool) -> bool:
    """Whether to draw tqdm's epoch bars: asked for, and not switched off by ``TQDM_DISABLE``
    (the book's runner sets it, so rendered pages show no bars; an interactive run keeps them)."""
    return bool(progress) and os.environ.get("TQDM_DISABLE", "").lower() not in {"1", "true"}


def small_cohort_problems(n_train: int, n_valid: int, batch_size: int) -> list[str]:
    """Why a fit on this many samples is fragile: fewer than ~10 gradient steps per epoch
    (lower the batch size) or fewer than ~20 validation samples (early stopping and the chosen
    epoch follow noise); empty when neither."""
    problems = []
    steps = -(-n_train // batch_size)
    if steps < MIN_STEPS_PER_EPOCH:
        problems.append(f"batch size {batch_size} on {n_train} training samples gives {steps} "
                        f"gradient step(s) per epoch (< {MIN_STEPS_PER_EPOCH}); lower "
                        "batch_size")
    if n_valid < MIN_VALID_SAMPLES:
        problems.append(f"the validation split has {n_valid} samples (< {MIN_VALID_SAMPLES}): "
                        "early stopping and the restored epoch follow noise")
    return problems


@dataclass
class Training:
    """How long and where to train: epochs, early-stopping patience, seed, scratch folder."""

    max_epochs: int = 100
    patience: int = 10
    seed: int = 0
    workdir: Path | None = None
    progress: bool = True


@dataclass
class FitResult:
    """A fitted network with its per-epoch history (MAE in years), wall time, set-up time (up
    to the first batch) and seconds per epoch. ``model`` is the pytorch-tabular
    ``TabularModel`` around the network (built on first use: trials never need it)."""

    network: object
    history: pd.DataFrame
    seconds: float
    best_epoch: int
    hyperparameters: dict = field(default_factory=dict)
    setup_seconds: float = 0.0
    epoch_seconds: list = field(default_factory=list)
    build_model: object = None  # () -> TabularModel
    _model: object = None

    @property
    def model(self):
        """pytorch-tabular's ``TabularModel`` holding the trained network."""
        if self._model is None:
            self._model = self.build_model()
        return self._model


def _initialization(activation: str) -> str:
    """Kaiming suits (leaky) ReLU; Xavier the saturating or smooth activations."""
    return "kaiming" if activation in ("ReLU", "LeakyReLU") else "xavier"


def model_config(kind: str, hp: dict):
    """The pytorch-tabular model config: TabTransformer with an MLP head of ``hp['layers']``,
    CategoryEmbedding (plain MLP) with the same hidden layers, or FT-Transformer (every gene a
    token that attention sees, :data:`FT_ENCODER`) with the same head."""
    from pytorch_tabular.models import (
        CategoryEmbeddingModelConfig,
        FTTransformerConfig,
        TabTransformerConfig,
    )

    mlp = {"layers": hp["layers"], "activation": hp["activation"], "dropout": hp["dropout"],
           "initialization": _initialization(hp["activation"])}
    if kind == "tabtransformer":
        return TabTransformerConfig(task="regression", learning_rate=hp["learning_rate"],
                                    head="LinearHead", head_config=mlp, **LOSS)
    if kind == "mlp":
        return CategoryEmbeddingModelConfig(task="regression", learning_rate=hp["learning_rate"],
                                            **LOSS, **mlp)
    if kind == "fttransformer":
        return FTTransformerConfig(task="regression", learning_rate=hp["learning_rate"],
                                   head="LinearHead", head_config=mlp, **FT_ENCODER, **LOSS)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")


def tabular_model(kind: str, hp: dict, genes: list[str], training: Training, workdir: Path):
    """An untrained pytorch-tabular ``TabularModel`` for the shared gene space."""
    from pytorch_tabular import TabularModel
    from pytorch_tabular.config import DataConfig, OptimizerConfig, TrainerConfig

    data = DataConfig(target=[TARGET], continuous_cols=list(genes),
                      categorical_cols=list(CATEGORICAL), normalize_continuous_features=False,
                      num_workers=0, pin_memory=False)
    optimizer = OptimizerConfig(optimizer=hp["optimizer"],
                                optimizer_params={"weight_decay": hp["l2"]})
    trainer = TrainerConfig(
        batch_size=int(hp["batch_size"]), max_epochs=training.max_epochs,
        early_stopping=MONITOR, early_stopping_patience=training.patience,
        checkpoints=MONITOR, checkpoints_path=str(workdir / "checkpoints"),
        checkpoints_save_top_k=1, load_best=True, progress_bar="none", seed=training.seed,
        trainer_kwargs={"default_root_dir": str(workdir), "enable_model_summary": False,
                        "log_every_n_steps": 1})
    return TabularModel(data_config=data, model_config=model_config(kind, hp),
                        optimizer_config=optimizer, trainer_config=trainer, verbose=False)


@contextlib.contextmanager
def quiet_training(workdir: Path):
    """Run inside ``workdir`` with Lightning's start-up chatter and CPU-only warnings muted."""
    import pytorch_lightning  # noqa: F401  (imported first: it sets its loggers' levels)

    prefixes = ("pytorch_lightning", "lightning_fabric", "pytorch_tabular")
    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(prefixes)]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.chdir(workdir):
            for pattern in (".*does not have many workers.*", ".*pin_memory.*",
                            ".*number of training batches.*", ".*LeafSpec.*",
                            ".*tensorboardX.*", ".*litlogger.*", ".*Checkpoint directory.*",
                            ".*Cannot update config in inference mode.*"):
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def predict(model, table: pd.DataFrame) -> np.ndarray:
    """Predicted age in years (the target transform undone) for an encoded table."""
    with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
        out = model.predict(table.drop(columns=[TARGET], errors="ignore"))
    return out[f"{TARGET}_prediction"].to_numpy(dtype=float)


def _predict_batches(module, loader, transform) -> np.ndarray:
    import torch

    outputs = []
    with torch.no_grad():
        for batch in loader:
            y_hat, _ = module.predict(batch, ret_model_output=True)
            outputs.append(y_hat.detach().cpu().numpy().reshape(-1, 1))
    scaled = np.vstack(outputs)
    return transform.inverse_transform(scaled).ravel()


def history_callback(owner, monitor: dict[str, pd.DataFrame], progress: bool, label: str,
                     on_epoch=None):
    """A Lightning callback recording, after every epoch, the MAE in years on each ``monitor``
    table (e.g. train, valid, test), with a tqdm bar over epochs; ``on_epoch(epoch, maes)``
    can stop training (Optuna pruning) by returning True."""
    import pytorch_lightning as pl
    from tqdm import tqdm

    class EpochHistory(pl.Callback):
        def __init__(self):
            self.records, self.loaders, self.bar = [], {}, None

        def on_train_start(self, trainer, pl_module):
            dm = owner.datamodule
            self.loaders = {k: dm.prepare_inference_dataloader(v.drop(columns=[TARGET]))
                            for k, v in monitor.items()}
            self.truth = {k: v[TARGET].to_numpy(dtype=float) for k, v in monitor.items()}
            self.transform = dm.target_transforms[0]
            self.bar = tqdm(total=trainer.max_epochs, desc=label, unit="epoch",
                            disable=not shows_bars(progress), leave=True, mininterval=30.0)

        def on_train_epoch_end(self, trainer, pl_module):
            was_training = pl_module.training
            pl_module.eval()
            maes = {k: float(np.mean(np.abs(_predict_batches(pl_module, loader, self.transform)
                                            - self.truth[k])))
                    for k, loader in self.loaders.items()}
            pl_module.train(was_training)
            self.records.append({"epoch": trainer.current_epoch + 1, **maes})
            self.bar.update(1)
            self.bar.set_postfix({f"{k} MAE": f"{v:.2f}" for k, v in maes.items()},
                                 refresh=False)
            if on_epoch is not None and on_epoch(trainer.current_epoch, maes):
                trainer.should_stop = True

        def on_train_end(self, trainer, pl_module):
            self.bar.close()

    return EpochHistory()


def l1_callback(strength: float):
    """L1 regularisation as a Lightning callback: adds ``strength * sign(w)`` (the penalty's
    subgradient) to the gradient of every weight matrix after each backward pass
    (pytorch-tabular has weight decay (L2) but no L1 option)."""
    import pytorch_lightning as pl
    import torch

    class L1Penalty(pl.Callback):
        def on_after_backward(self, trainer, pl_module):
            with torch.no_grad():
                for name, p in pl_module.named_parameters():
                    if p.grad is not None and p.ndim > 1 and name.endswith("weight"):
                        p.grad.add_(torch.sign(p), alpha=strength)

    return L1Penalty()


# --- training: pytorch-tabular's network and data preparation, a plain loop on tensors -------
#
# pytorch-tabular builds the network (its TabTransformer or CategoryEmbedding model, loss and
# optimizer from its configs) and prepares the data (categorical encoding, target scaling:
# its TabularDatamodule). Training the network goes through a plain PyTorch loop over tensors
# rather than Lightning's Trainer: the Trainer's per-step logging and metrics, its per-epoch
# checkpoint files and a second validation pass made an epoch several times slower than the
# loop, and its configs, which list every gene name, cost 9-13 s per fit before the first batch
# (``benchmarks/transformer_epoch_time.py`` measures both against a plain loop).
# :func:`lightning_fit` keeps the library's own Trainer path as the reference
# (``tests/test_transformer_clock.py`` compares the two).

PREPARED_CACHE = 2  # prepared splits kept in memory (a study reuses one; CV moves on)
_prepared: OrderedDict = OrderedDict()


def device():
    """The torch device every fit uses: the first GPU when torch sees one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def split_fingerprint(genes: list[str], train: pd.DataFrame, valid: pd.DataFrame,
                      seed: int) -> str:
    """A digest of what a prepared split depends on: gene order, rows, values, seed."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([list(genes), seed]).encode())
    for frame in (train, valid):
        digest.update(json.dumps([str(i) for i in frame.index]).encode())
        digest.update(np.ascontiguousarray(frame[list(genes)].to_numpy(np.float32)).tobytes())
        labels = pd.util.hash_pandas_object(frame[[*CATEGORICAL, TARGET]], index=False)
        digest.update(labels.to_numpy().tobytes())
    return digest.hexdigest()


def _container(config) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(config))


def small_config(kind: str, hp: dict, training: Training) -> dict:
    """The full pytorch-tabular config of one fit without the gene names (``continuous_cols``
    empty): networks only need the number of genes, which the inferred config carries, and
    copying 5,000 names through OmegaConf is what made every fit's set-up slow."""
    from pytorch_tabular.config import DataConfig, OptimizerConfig, TrainerConfig

    data = DataConfig(target=[TARGET], continuous_cols=[], categorical_cols=list(CATEGORICAL),
                      normalize_continuous_features=False, num_workers=0, pin_memory=False)
    optimizer = OptimizerConfig(optimizer=hp["optimizer"],
                                optimizer_params={"weight_decay": hp["l2"]})
    trainer = TrainerConfig(batch_size=int(hp["batch_size"]), max_epochs=training.max_epochs,
                            early_stopping=None, checkpoints=None, load_best=False,
                            progress_bar="none", seed=training.seed,
                            trainer_kwargs={"enable_model_summary": False})
    merged = {}
    for part in (data, model_config(kind, hp), trainer, optimizer):
        merged.update(_container(part))
    return merged


def full_config(small: dict, genes: list[str]):
    """``small`` with the gene names: what a ``TabularModel`` saves and reloads."""
    from omegaconf import OmegaConf

    return OmegaConf.create({**small, "continuous_cols": list(genes)})


@dataclass
class PreparedSplit:
    """A training and validation split prepared once and shared by every fit on it (all
    trials of a study): pytorch-tabular's datamodule, its inferred config, tensors."""

    fingerprint: str
    genes: tuple
    datamodule: object
    inferred: object
    tensors: dict  # part -> {"continuous", "categorical", "target" (scaled), "years"}

    def scaled_to_years(self, scaled):
        """Undo the target scaling (the datamodule's StandardScaler)."""
        transform = self.datamodule.target_transforms[0]
        return np.asarray(scaled, dtype=float) * transform.scale_[0] + transform.mean_[0]


def dataset_tensors(dataset) -> dict:
    """A pytorch-tabular dataset's columns as tensors (continuous, categorical, target)."""
    import torch

    return {"continuous": torch.from_numpy(np.ascontiguousarray(dataset.continuous_X)),
            "categorical": torch.from_numpy(np.ascontiguousarray(dataset.categorical_X)),
            "target": torch.from_numpy(np.ascontiguousarray(dataset.y, dtype=np.float32))}


def prepare_split(genes: list[str], train: pd.DataFrame, valid: pd.DataFrame,
                  training: Training, kind: str = "tabtransformer") -> PreparedSplit:
    """The datamodule (category codes learnt on ``train``, target standard-scaled on
    ``train``) and tensors of a split, from an in-memory cache when the same split (same
    genes, rows, values and seed) was prepared before."""
    from omegaconf import OmegaConf
    from pytorch_tabular.tabular_datamodule import TabularDatamodule
    from sklearn.preprocessing import StandardScaler

    key = split_fingerprint(genes, train, valid, training.seed)
    if key in _prepared:
        _prepared.move_to_end(key)
        return _prepared[key]
    config = full_config(small_config(kind, PAPER_HYPERPARAMETERS, training), genes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datamodule = TabularDatamodule(train=train, validation=valid, config=config,
                                       target_transform=StandardScaler(), seed=training.seed,
                                       cache_data="memory", verbose=False)
        datamodule.prepare_data()
        datamodule.setup("fit")
    inferred = OmegaConf.structured(datamodule._inferred_config)
    monitor = train.sample(min(len(train), MONITOR_ROWS), random_state=training.seed)
    tensors = {"fit": dataset_tensors(datamodule.train_dataset),
               "valid": dataset_tensors(datamodule.validation_dataset),
               "train": inference_tensors(datamodule, monitor)}
    tensors["valid"]["years"] = valid[TARGET].to_numpy(dtype=float)
    split = PreparedSplit(key, tuple(genes), datamodule, inferred, tensors)
    _prepared[key] = split
    while len(_prepared) > PREPARED_CACHE:
        _prepared.popitem(last=False)
    return split


def inference_tensors(datamodule, rows: pd.DataFrame) -> dict:
    """Rows encoded by the datamodule (the same categorical codes), as tensors."""
    loader = datamodule.prepare_inference_dataloader(rows.drop(columns=[TARGET]))
    out = dataset_tensors(loader.dataset)
    out["target"] = None
    out["years"] = rows[TARGET].to_numpy(dtype=float)
    return out


def training_loss(network, output: dict, target):
    """pytorch-tabular's loss (``BaseModel.calculate_loss`` without its logging): the config's
    loss per target column (regression) or per target's classes (classification), plus any
    regularisation term the network returns."""
    loss = sum(output[k] for k in output if "regularization" in k and output[k] is not None)
    logits = output["logits"]
    if network.hparams.task == "regression":
        for i in range(target.shape[1]):
            loss = loss + network.loss(logits[:, i], target[:, i])
        return loss
    start = 0
    for i, classes in enumerate(network.hparams.output_cardinality):
        loss = loss + network.loss(logits[:, start:start + classes], target[:, i])
        start += classes
    return loss


def _batches(part: dict, rows, to):
    return {k: part[k][rows].to(to) for k in ("continuous", "categorical")}


def predict_scaled(network, part: dict, batch_size: int = 2048) -> np.ndarray:
    """The network's output (standard-scaled age) for every row of a tensor part."""
    import torch

    to = next(network.parameters()).device
    outputs = []
    with torch.no_grad():
        for start in range(0, len(part["continuous"]), batch_size):
            rows = slice(start, start + batch_size)
            outputs.append(network(_batches(part, rows, to))["logits"][:, 0].cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros(0)


def build_network(kind: str, hp: dict, split: PreparedSplit, training: Training):
    """pytorch-tabular's network for ``kind`` with hyperparameters ``hp``, sized by the
    split's inferred config (the number of genes, category levels)."""
    from omegaconf import OmegaConf
    from pytorch_tabular.utils import getattr_nested

    config = OmegaConf.create(small_config(kind, hp, training))
    callable_ = getattr_nested(config._module_src, config._model_name)
    network = callable_(config, inferred_config=split.inferred)
    network.data_aware_initialization(split.datamodule)
    return network, config


def library_optimizer(network):
    """The optimizer pytorch-tabular configures for the network (its config's name, rate,
    weight decay)."""
    configured = network.configure_optimizers()
    return configured["optimizer"] if isinstance(configured, dict) else configured


def train_network(network, hp: dict, split: PreparedSplit, training: Training,
                  monitor: dict, on_epoch=None, label: str = "fit"):
    """Mini-batch training of ``network`` on the split's fit tensors (shuffled per epoch by a
    generator seeded with ``training.seed``), the validation MAE in years after each epoch,
    early stopping after ``training.patience`` epochs without improvement, the best epoch's
    weights kept in memory and restored. Returns the per-epoch history and epoch seconds."""
    import torch
    from tqdm import tqdm

    to = device()
    network.to(to)
    optimizer = library_optimizer(network)
    # the fit tensors move to the device once (a no-op on the CPU), not batch by batch
    fit = {k: split.tensors["fit"][k].to(to) for k in ("continuous", "categorical")}
    target = split.tensors["fit"]["target"].to(to)
    generator = torch.Generator().manual_seed(training.seed)
    batch = int(hp["batch_size"])
    n = len(target)
    records, seconds, best, best_state, waited = [], [], np.inf, None, 0
    bar = tqdm(total=training.max_epochs, desc=label, unit="epoch",
               disable=not shows_bars(training.progress), leave=True, mininterval=30.0)
    for epoch in range(training.max_epochs):
        start = time.perf_counter()
        network.train()
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, batch):
            rows = order[first:first + batch].to(to)
            loss = training_loss(network, network({k: v[rows] for k, v in fit.items()}),
                                 target[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hp["l1"] > 0:  # the L1 penalty's subgradient on every weight matrix
                with torch.no_grad():
                    for name, p in network.named_parameters():
                        if p.grad is not None and p.ndim > 1 and name.endswith("weight"):
                            p.grad.add_(torch.sign(p), alpha=hp["l1"])
            optimizer.step()
        network.eval()
        maes = {part: float(np.mean(np.abs(split.scaled_to_years(predict_scaled(network, t))
                                           - t["years"])))
                for part, t in monitor.items()}
        seconds.append(time.perf_counter() - start)
        records.append({"epoch": epoch + 1, **maes})
        bar.update(1)
        bar.set_postfix({f"{k} MAE": f"{v:.2f}" for k, v in maes.items()}, refresh=False)
        if maes["valid"] < best:
            best, waited = maes["valid"], 0
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        else:
            waited += 1
        if waited >= training.patience or (on_epoch is not None and on_epoch(epoch, maes)):
            break
    bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    history = pd.DataFrame(records, columns=["epoch", *monitor]).set_index("epoch")
    return history, seconds


def fitted_model(network, kind: str, hp: dict, split: PreparedSplit, training: Training):
    """A pytorch-tabular ``TabularModel`` around a trained network and its datamodule: what
    :func:`predict`, :func:`save_clock` and transfer learning use."""
    from pytorch_tabular import TabularModel

    config = full_config(small_config(kind, hp, training), split.genes)
    model = TabularModel(config=config, verbose=False)
    model._prepare_for_training(network, split.datamodule, callbacks=[])
    model.trainer.strategy.connect(network)
    model._is_fitted = True
    return model


def fit(kind: str, hp: dict, train: pd.DataFrame, valid: pd.DataFrame, genes: list[str],
        training: Training, monitor: dict[str, pd.DataFrame] | None = None,
        on_epoch=None, label: str | None = None, record_train: bool = True) -> FitResult:
    """Train on ``train``, early-stopping on ``valid`` (a split carved from training data),
    with the age target standard-scaled. The history records MAE per epoch on ``train`` (up to
    1,000 rows; not when ``record_train`` is False, as in a search), on ``valid`` and on any
    extra ``monitor`` tables (e.g. the hold-out, recorded for the learning curve and never used
    to choose anything); ``on_epoch(epoch, maes)`` returning True stops training (Optuna
    pruning). The split is prepared once and reused by later fits on it."""
    from pytorch_lightning import seed_everything

    hp = {**PAPER_HYPERPARAMETERS, **hp}
    for problem in small_cohort_problems(len(train), len(valid), int(hp["batch_size"])):
        warnings.warn(f"{label or kind}: {problem}", SmallCohortWarning, stacklevel=2)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
        split = prepare_split(genes, train, valid, training, kind)
        parts = {"train": split.tensors["train"]} if record_train else {}
        parts["valid"] = split.tensors["valid"]
        parts.update({name: inference_tensors(split.datamodule, rows)
                      for name, rows in (monitor or {}).items()})
        # pytorch-tabular seeds only when ``seed or config.seed`` is truthy: seed 0 would
        # train unseeded, so every random generator is seeded here.
        seed_everything(training.seed, workers=True, verbose=False)
        network, _ = build_network(kind, hp, split, training)
        setup = time.perf_counter() - start
        history, seconds = train_network(network, hp, split, training, parts, on_epoch,
                                         label or kind)
    best = int(history["valid"].idxmin()) if len(history) else 0

    def build_model():
        with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
            return fitted_model(network, kind, hp, split, training)

    return FitResult(network, history, time.perf_counter() - start, best, hp, setup, seconds,
                     build_model)


def lightning_fit(kind: str, hp: dict, train: pd.DataFrame, valid: pd.DataFrame, genes: list[str],
        training: Training, monitor: dict[str, pd.DataFrame] | None = None,
        on_epoch=None, label: str | None = None, callbacks: list | None = None) -> FitResult:
    """The library's own training path (``TabularModel.fit``: Lightning's Trainer, checkpoint
    files, its early stopping), kept as the reference for :func:`fit`. Train on ``train``,
    early-stopping on ``valid`` (a split carved from training data),
    with the age target standard-scaled; the history records MAE per epoch on ``train`` (up to
    1,000 rows), ``valid`` and any extra ``monitor`` tables (e.g. the hold-out, recorded for the
    learning curve and never used to choose anything); ``callbacks`` run before the history."""
    from pytorch_lightning import seed_everything
    from sklearn.preprocessing import StandardScaler

    hp = {**PAPER_HYPERPARAMETERS, **hp}
    for problem in small_cohort_problems(len(train), len(valid), int(hp["batch_size"])):
        warnings.warn(f"{label or kind}: {problem}", SmallCohortWarning, stacklevel=2)
    root = Path(training.workdir or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))
    monitor = {"train": train.sample(min(len(train), MONITOR_ROWS), random_state=training.seed),
               "valid": valid, **(monitor or {})}
    start = time.perf_counter()
    try:
        with quiet_training(workdir):
            # pytorch-tabular seeds only when ``seed or config.seed`` is truthy: seed 0 would
            # train unseeded, so every random generator is seeded here.
            seed_everything(training.seed, workers=True, verbose=False)
            model = tabular_model(kind, hp, genes, training, workdir)
            history = history_callback(model, monitor, training.progress, label or kind,
                                       on_epoch)
            callbacks = [*(callbacks or []), history] + (
                [l1_callback(hp["l1"])] if hp["l1"] > 0 else [])
            model.fit(train=train, validation=valid, target_transform=StandardScaler(),
                      callbacks=callbacks, seed=training.seed)
            model.callbacks = []  # they hold the monitored tables; nothing to save or reuse
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    frame = pd.DataFrame(history.records).set_index("epoch")
    best = int(frame["valid"].idxmin()) if len(frame) else 0
    return FitResult(model.model, frame, time.perf_counter() - start, best, hp, _model=model)


# --- saving and loading ---------------------------------------------------------------------

MANIFEST = "sha256.json"
TRUSTED_CLOCKS = "trusted-clocks.json"


def trusted_clocks_file() -> Path:
    """Where the sha256 of each saved clock's manifest is kept: in the cache, outside every
    clock folder, so that whoever can write a clock folder cannot vouch for what it holds."""
    from helpers.data.registry import cache_dir

    return cache_dir() / TRUSTED_CLOCKS


def trusted_manifest_sha256(folder: Path | str) -> str | None:
    """The manifest sha256 recorded when this machine saved the clock in ``folder``, if any."""
    book = trusted_clocks_file()
    if not book.is_file():
        return None
    try:
        return json.loads(book.read_text()).get(str(Path(folder).resolve()))
    except json.JSONDecodeError as err:
        raise ValueError(f"{book}: not readable JSON ({err}); fix or remove it") from None


def _trust(folder: Path, digest: str) -> None:
    book = trusted_clocks_file()
    with locked(book.with_name(book.name + ".lock")):
        record = json.loads(book.read_text()) if book.is_file() else {}
        record[str(folder.resolve())] = digest
        write_whole(book, json.dumps(record, indent=1, sort_keys=True))


def is_trusted_clock(folder: Path | str) -> bool:
    """Whether ``folder`` holds a clock whose manifest is the one recorded when it was saved."""
    manifest = Path(folder) / MANIFEST
    expected = trusted_manifest_sha256(folder)
    return manifest.is_file() and expected is not None and sha256_of(manifest) == expected


def save_clock(folder: Path | str, result: FitResult, space: FeatureSpace,
               about: dict) -> Path:
    """Save the model (pytorch-tabular's inference-only format), the feature space (gene
    scaling and category levels, JSON), the hyperparameters and ``about`` (data, profile,
    seed...), and a sha256 manifest whose own sha256 is kept outside the folder
    (:func:`trusted_clocks_file`). The clock is written beside ``folder`` and swapped in only
    when complete; an existing ``folder`` that is not a saved clock is refused, not deleted."""
    folder = Path(folder)
    if folder.exists() and not (folder / MANIFEST).is_file():
        raise ValueError(f"{folder}: exists and is not a saved clock (no {MANIFEST}); refusing "
                         "to replace it (choose an empty or new folder)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
            result.model.save_model(str(partial / "model"), inference_only=True)
        space.save(partial / "feature_space.json")
        meta = {"hyperparameters": result.hyperparameters, "best_epoch": result.best_epoch,
                **about}
        (partial / "about.json").write_text(json.dumps(meta, indent=1, default=str))
        result.history.to_csv(partial / "history.csv")
        files = sorted(p for p in partial.rglob("*") if p.is_file())
        manifest = {str(p.relative_to(partial)): sha256_of(p) for p in files}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    replace_folder(partial, folder)
    _trust(folder, sha256_of(folder / MANIFEST))
    return folder


def verify_clock(folder: Path | str, manifest_sha256: str | None = None,
                 copy_to: Path | None = None) -> None:
    """Raise unless the manifest's sha256 is ``manifest_sha256`` (default: the one recorded
    by :func:`save_clock`) and every file is listed, present and unchanged; with ``copy_to``,
    each file is copied there from the very bytes that were checked."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no manifest; not a saved clock folder")
    expected = manifest_sha256 or trusted_manifest_sha256(folder)
    if expected is None:
        raise ValueError(f"{folder}: no trusted sha256 for its {MANIFEST} (this machine did "
                         f"not save it: none in {trusted_clocks_file()}); pass the manifest's "
                         "sha256 from a source you trust")
    raw = manifest_path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != expected:
        raise ValueError(f"{manifest_path}: sha256 differs from the trusted one; refusing to "
                         "load the clock")
    manifest = json.loads(raw)
    present = {str(p.relative_to(folder)) for p in folder.rglob("*")
               if p.is_file() and p.name != MANIFEST}
    extra = sorted(present - set(manifest))
    if extra:
        raise ValueError(f"{folder}: files not in the manifest: {extra}")
    for name, digest in manifest.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed in {MANIFEST} but missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{path}: sha256 differs from {MANIFEST}; refusing to load it")
        if copy_to is not None:
            (copy_to / name).parent.mkdir(parents=True, exist_ok=True)
            (copy_to / name).write_bytes(data)


@dataclass
class SavedClock:
    """A clock loaded from disk: model, feature space and what it was trained on."""

    model: object
    space: FeatureSpace
    about: dict
    history: pd.DataFrame

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Predicted age in years for a table encoded with ``self.space``."""
        return predict(self.model, table)


def load_clock(folder: Path | str, manifest_sha256: str | None = None) -> SavedClock:
    """Load a folder written by :func:`save_clock`: every file is checked against the manifest
    (itself checked against the trusted sha256, see :func:`verify_clock`) and copied into a
    private folder, and only those copies are parsed (pytorch-tabular's format unpickles)."""
    from pytorch_tabular import TabularModel

    with tempfile.TemporaryDirectory() as private:
        copy = Path(private)
        verify_clock(folder, manifest_sha256, copy_to=copy)
        with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
            model = TabularModel.load_model(str(copy / "model"))
        about = json.loads((copy / "about.json").read_text())
        history = pd.read_csv(copy / "history.csv", index_col="epoch")
        space = FeatureSpace.load(copy / "feature_space.json")
    return SavedClock(model, space, about, history)
