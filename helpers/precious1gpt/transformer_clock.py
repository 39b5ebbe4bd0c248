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
import json
import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.registry import sha256_of
from helpers.precious1gpt.multimodal import CATEGORICAL, FeatureSpace

TARGET = "age"
KINDS = ("tabtransformer", "mlp")
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
    """A fitted model with its per-epoch history (MAE in years) and wall time."""

    model: object  # pytorch_tabular.TabularModel
    history: pd.DataFrame
    seconds: float
    best_epoch: int
    hyperparameters: dict = field(default_factory=dict)


def _initialization(activation: str) -> str:
    """Kaiming suits (leaky) ReLU; Xavier the saturating or smooth activations."""
    return "kaiming" if activation in ("ReLU", "LeakyReLU") else "xavier"


def model_config(kind: str, hp: dict):
    """The pytorch-tabular model config: TabTransformer with an MLP head of ``hp['layers']``,
    or CategoryEmbedding (plain MLP) with the same hidden layers."""
    from pytorch_tabular.models import CategoryEmbeddingModelConfig, TabTransformerConfig

    mlp = {"layers": hp["layers"], "activation": hp["activation"], "dropout": hp["dropout"],
           "initialization": _initialization(hp["activation"])}
    if kind == "tabtransformer":
        return TabTransformerConfig(task="regression", learning_rate=hp["learning_rate"],
                                    head="LinearHead", head_config=mlp, **LOSS)
    if kind == "mlp":
        return CategoryEmbeddingModelConfig(task="regression", learning_rate=hp["learning_rate"],
                                            **LOSS, **mlp)
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
                            disable=not progress, leave=True, mininterval=30.0)

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


def fit(kind: str, hp: dict, train: pd.DataFrame, valid: pd.DataFrame, genes: list[str],
        training: Training, monitor: dict[str, pd.DataFrame] | None = None,
        on_epoch=None, label: str | None = None, callbacks: list | None = None) -> FitResult:
    """Train on ``train``, early-stopping on ``valid`` (a split carved from training data),
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
    return FitResult(model, frame, time.perf_counter() - start, best, hp)


# --- saving and loading ---------------------------------------------------------------------

MANIFEST = "sha256.json"


def save_clock(folder: Path | str, result: FitResult, space: FeatureSpace,
               about: dict) -> Path:
    """Save the model (pytorch-tabular's inference-only format), the feature space (gene
    scaling and category levels, JSON), the hyperparameters and ``about`` (data, profile,
    seed...), and a sha256 manifest that :func:`load_clock` checks before unpickling."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    model_dir = folder / "model"
    with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
        result.model.save_model(str(model_dir), inference_only=True)
    space.save(folder / "feature_space.json")
    meta = {"hyperparameters": result.hyperparameters, "best_epoch": result.best_epoch, **about}
    (folder / "about.json").write_text(json.dumps(meta, indent=1, default=str))
    result.history.to_csv(folder / "history.csv")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {str(p.relative_to(folder)): sha256_of(p) for p in files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def verify_clock(folder: Path | str) -> None:
    """Raise if any saved file is missing, added or changed since :func:`save_clock`."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no manifest; not a saved clock folder")
    manifest = json.loads(manifest_path.read_text())
    present = {str(p.relative_to(folder)) for p in folder.rglob("*")
               if p.is_file() and p.name != MANIFEST}
    extra = sorted(present - set(manifest))
    if extra:
        raise ValueError(f"{folder}: files not in the manifest: {extra}")
    for name, digest in manifest.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed in {MANIFEST} but missing")
        if sha256_of(path) != digest:
            raise ValueError(f"{path}: sha256 differs from {MANIFEST}; refusing to load it")


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


def load_clock(folder: Path | str) -> SavedClock:
    """Load a folder written by :func:`save_clock` after checking every file's sha256."""
    from pytorch_tabular import TabularModel

    folder = Path(folder)
    verify_clock(folder)
    with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
        model = TabularModel.load_model(str(folder / "model"))
    about = json.loads((folder / "about.json").read_text())
    history = pd.read_csv(folder / "history.csv", index_col="epoch")
    return SavedClock(model, FeatureSpace.load(folder / "feature_space.json"), about, history)
