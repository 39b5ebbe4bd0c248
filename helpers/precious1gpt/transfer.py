"""Transfer learning from the age regressor to case-control classifiers (paper: Methods,
"Transfer learning for case-control classification"; Supplementary Table 8).

The aging-aware classifier has the regressor's architecture; every weight is loaded from the
trained regressor except the new last layer (128 -> 2 classes), every layer but that one is
frozen and kept in eval mode (so BatchNorm's running statistics stay the regressor's), and the
last layer is retrained on case / control. The baseline is the same classifier trained from
scratch. Disease samples enter through the regressor's feature space (its training-set gene
scaling) and its category encoder, so that "Lung" and "expression" map to the embeddings the
regressor learned for them.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from helpers.common import expression, wording
from helpers.precious1gpt import multimodal, transformer_clock
from helpers.precious1gpt.multimodal import CATEGORICAL

LABEL = "case"  # 1 = case, 0 = control
ARMS = ("pretrained", "scratch")
ARM_NAMES = {"pretrained": "aging-aware (regressor weights, last layer retrained)",
             "scratch": "from scratch (same architecture, every layer trained)"}
METRICS = ("AUROC", "average precision", "accuracy", "F1")
MIN_PAIRED_SPLITS = 5  # fewer splits: a paired test is not computed into a verdict
REFERENCE = "logistic_regression"  # a linear reference on the same splits, not one of the arms


@dataclass
class FineTuning:
    """How each classifier is trained: epochs, early stopping, learning rates per arm."""

    max_epochs: int = 100
    patience: int = 10
    scratch_learning_rate: float = 2.3e-4  # the paper's regressor configuration
    finetune_learning_rate: float = 1e-3  # the new last layer alone (the paper gives none)
    batch_size: int | None = None  # None: the regressor's (the paper's 96)


# --- the disease cohorts in the regressor's space ---------------------------------------------

def disease_table(space: multimodal.FeatureSpace, adata) -> pd.DataFrame:
    """A case-control cohort as the regressor sees expression: quantile-normalised (the cohort
    is one batch, so there is no ComBat step), z-scored with the regressor's training scaling,
    with tissue, modality and the ``case`` label."""
    if LABEL not in adata.obs:
        raise ValueError(f"cohort {adata.uns.get('disease', '?')!r}: obs lacks the field "
                         f"{LABEL!r} (1 = case, 0 = control)")
    values = expression.quantile_normalise(adata.to_df())
    table, _ = multimodal.encode(space, values, adata.obs, "expression")
    table[LABEL] = adata.obs[LABEL].astype(int).to_numpy()
    return table


def repeated_splits(labels: pd.Series, n_splits: int, seed: int, test_size: float = 0.25,
                    valid_size: float = 0.2) -> list[dict[str, pd.Index]]:
    """``n_splits`` stratified (fit, valid, test) splits, split ``i`` seeded ``seed + i``; the
    validation part (early stopping) is carved from the training part, stratified too."""
    out = []
    for i in range(n_splits):
        train, test = train_test_split(labels.index, test_size=test_size, stratify=labels,
                                       random_state=seed + i)
        fit, valid = train_test_split(train, test_size=valid_size,
                                      stratify=labels.loc[train], random_state=seed + i)
        out.append({"fit": pd.Index(fit), "valid": pd.Index(valid), "test": pd.Index(test),
                    "split": i})
    return out


# --- building the classifier ---------------------------------------------------------------------

def classifier_model(regressor, arm: str, tuning: FineTuning):
    """An untrained classification ``TabularModel`` with the regressor's head and settings, for
    one arm (its learning rate). Its configuration holds every gene name and takes seconds to
    build, so one serves every fit of an arm (:func:`train_classifier` trains each network)."""
    from pytorch_tabular import TabularModel
    from pytorch_tabular.config import DataConfig, OptimizerConfig, TrainerConfig
    from pytorch_tabular.models import TabTransformerConfig

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {ARMS}")
    hp = {**transformer_clock.PAPER_HYPERPARAMETERS,
          **regressor.about.get("hyperparameters", {})}
    rate = tuning.finetune_learning_rate if arm == "pretrained" else tuning.scratch_learning_rate
    head = {"layers": hp["layers"], "activation": hp["activation"], "dropout": hp["dropout"],
            "initialization": transformer_clock._initialization(hp["activation"])}
    data = DataConfig(target=[LABEL], continuous_cols=list(regressor.space.genes),
                      categorical_cols=list(CATEGORICAL), normalize_continuous_features=False,
                      num_workers=0, pin_memory=False)
    model = TabTransformerConfig(task="classification", learning_rate=rate,
                                 head="LinearHead", head_config=head)
    optimizer = OptimizerConfig(optimizer=hp["optimizer"],
                                optimizer_params={"weight_decay": hp["l2"]})
    trainer = TrainerConfig(
        batch_size=int(tuning.batch_size or hp["batch_size"]), max_epochs=tuning.max_epochs,
        early_stopping="valid_loss", early_stopping_patience=tuning.patience,
        checkpoints=None, load_best=False, progress_bar="none",
        trainer_kwargs={"default_root_dir": ".", "enable_model_summary": False,
                        "log_every_n_steps": 1})
    classifier = TabularModel(data_config=data, model_config=model, optimizer_config=optimizer,
                              trainer_config=trainer, verbose=False)
    classifier.logger = False  # no CSV log: writing its hyperparameters took a second a fit
    return classifier


def category_codes(encoder, frame: pd.DataFrame) -> np.ndarray:
    """Tissue and modality as the regressor's ordinal codes (its encoder, not a refitted one)."""
    coded = encoder.transform(frame[list(CATEGORICAL)].copy())
    return coded[list(CATEGORICAL)].astype(np.int64).to_numpy()


def aligned_datamodule(classifier, regressor, fit: pd.DataFrame, valid: pd.DataFrame, seed: int):
    """The classifier's data module with the regressor's category encoder: pytorch-tabular
    refits the encoder on the new data (here one tissue), which would hand the pretrained
    embeddings the wrong categories."""
    dm = classifier.prepare_dataloader(fit, valid, seed=seed)
    encoder = copy.deepcopy(regressor.model.datamodule.categorical_encoder)
    dm.categorical_encoder = encoder
    for dataset, frame in ((dm.train_dataset, fit), (dm.validation_dataset, valid)):
        dataset.categorical_X = category_codes(encoder, frame)
    return dm


def classifier_network(classifier, regressor):
    """A classification network with the regressor's inferred sizes (embedding cardinalities
    included) and two outputs."""
    from pytorch_tabular.config import InferredConfig

    inferred = classifier._read_parse_config(regressor.model.datamodule._inferred_config,
                                             InferredConfig)
    inferred.output_dim, inferred.output_cardinality = 2, [2]
    classifier.inferred_config = inferred
    return classifier.model_callable(classifier.config, inferred_config=inferred)


def last_layer(network) -> str:
    """The name of the head's last layer (e.g. ``_head.layers.6``: the Linear after the
    128-2048-128 ELU layers), the only one that is new and trained in the aging-aware arm."""
    return f"_head.layers.{len(network.head.layers) - 1}"


def transfer_weights(network, regressor_network) -> list[str]:
    """Load every regressor weight except the last layer; returns the names left untouched
    (the new last layer), and refuses any other mismatch."""
    last = last_layer(network) + "."
    state = {k: v for k, v in regressor_network.state_dict().items() if not k.startswith(last)}
    missing, unexpected = network.load_state_dict(state, strict=False)
    foreign = [k for k in missing if not k.startswith(last)] + list(unexpected)
    if foreign:
        raise ValueError(f"regressor and classifier differ beyond the last layer: {foreign}")
    return list(missing)


def freeze_all_but_last(network) -> list[str]:
    """Freeze every parameter except the last layer's; returns the trainable names."""
    trainable, last = [], last_layer(network) + "."
    for name, parameter in network.named_parameters():
        parameter.requires_grad = name.startswith(last)
        if parameter.requires_grad:
            trainable.append(name)
    return trainable


def weight_changes(regressor_network, network) -> tuple[list[str], list[str], int]:
    """Compare a classifier with the regressor it came from, tensor by tensor (parameters and
    buffers): the names that differ, the names that are new (the last layer), and how many
    tensors the two share."""
    def tensors(module):
        return {**dict(module.named_parameters()), **dict(module.named_buffers())}

    before, after = tensors(regressor_network), tensors(network)
    new = sorted(n for n in after if n not in before or before[n].shape != after[n].shape)
    shared = [n for n in after if n not in new]
    changed = sorted(n for n in shared
                     if not np.array_equal(before[n].detach().cpu().numpy(),
                                           after[n].detach().cpu().numpy()))
    return changed, new, len(shared)


def train_classifier(network, datamodule, tuning: FineTuning, seed: int, frozen: bool) -> int:
    """Mini-batch training of a classifier on its data module's tensors (shuffled per epoch by
    a generator seeded with ``seed``): pytorch-tabular's loss and optimizer, the validation loss
    after each epoch, early stopping after ``tuning.patience`` epochs without improvement, and
    the best epoch's weights kept in memory and restored. With ``frozen``, everything but the
    last layer stays in eval mode, so BatchNorm keeps the regressor's running statistics.
    Returns the number of epochs run. (A plain loop rather than Lightning's Trainer: for these
    small cohorts the Trainer's per-epoch machinery cost more than the training itself.)"""
    import torch

    to = transformer_clock.device()
    network.to(to)
    optimizer = transformer_clock.library_optimizer(network)
    parts = {name: transformer_clock.dataset_tensors(dataset) for name, dataset in
             (("fit", datamodule.train_dataset), ("valid", datamodule.validation_dataset))}
    target = {name: part["target"].long().to(to) for name, part in parts.items()}
    inputs = {name: {k: part[k].to(to) for k in ("continuous", "categorical")}
              for name, part in parts.items()}
    generator = torch.Generator().manual_seed(seed)
    batch, n = datamodule.batch_size, len(target["fit"])
    best, best_state, waited, epochs = float("inf"), None, 0, 0
    for _ in range(tuning.max_epochs):
        epochs += 1
        network.train()
        if frozen:
            network.eval()
            network.get_submodule(last_layer(network)).train()
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, batch):
            rows = order[first:first + batch]
            output = network({k: v[rows] for k, v in inputs["fit"].items()})
            loss = transformer_clock.training_loss(network, output, target["fit"][rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            valid = float(transformer_clock.training_loss(
                network, network(inputs["valid"]), target["valid"]))
        if valid < best:
            best, waited = valid, 0
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        else:
            waited += 1
            if waited >= tuning.patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return epochs


def fit_classifier(regressor, table: pd.DataFrame, split: dict, arm: str, tuning: FineTuning,
                   seed: int, workdir: Path | None = None, template=None):
    """Train one classifier of ``arm`` (pretrained or scratch) on ``split['fit']``, early
    stopping on ``split['valid']`` and restoring its best epoch; ``template`` is an arm's
    :func:`classifier_model` to reuse. Returns the fitted ``TabularModel``."""
    from pytorch_lightning import seed_everything

    template = template or classifier_model(regressor, arm, tuning)
    root = Path(workdir or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{arm}-", dir=root))
    try:
        with transformer_clock.quiet_training(folder), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no logger configured.*")
            seed_everything(seed, workers=True, verbose=False)
            dm = aligned_datamodule(template, regressor, table.loc[split["fit"]],
                                    table.loc[split["valid"]], seed)
            network = classifier_network(template, regressor)
            if arm == "pretrained":
                transfer_weights(network, regressor.model.model)
                freeze_all_but_last(network)
            train_classifier(network, dm, tuning, seed, frozen=arm == "pretrained")
            template._prepare_for_training(network, dm, callbacks=[])
            template._is_fitted = True
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return copy.copy(template)  # this fit's model and data module; the template trains on


def case_probability(classifier, table: pd.DataFrame) -> np.ndarray:
    """P(case) for each row of an encoded table."""
    with tempfile.TemporaryDirectory() as tmp, transformer_clock.quiet_training(Path(tmp)):
        out = classifier.predict(table.drop(columns=[LABEL], errors="ignore"))
    return out[f"{LABEL}_1_probability"].to_numpy(dtype=float)


def classification_metrics(labels, probability, threshold: float = 0.5) -> dict[str, float]:
    """AUROC, average precision, accuracy and F1 (case = positive, P(case) >= threshold)."""
    labels = np.asarray(labels, dtype=int)
    called = (np.asarray(probability) >= threshold).astype(int)
    return {"AUROC": skm.roc_auc_score(labels, probability),
            "average precision": skm.average_precision_score(labels, probability),
            "accuracy": skm.accuracy_score(labels, called),
            "F1": skm.f1_score(labels, called, zero_division=0)}


def logistic_reference(table: pd.DataFrame, split: dict, genes: list[str]) -> np.ndarray:
    """P(case) on the test part from an L2 logistic regression fitted on the training part
    (fit and validation rows): what a linear model reaches with the same samples."""
    from sklearn.linear_model import LogisticRegression

    train = split["fit"].append(split["valid"])
    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit(table.loc[train, genes].to_numpy(), table.loc[train, LABEL].to_numpy())
    return model.predict_proba(table.loc[split["test"], genes].to_numpy())[:, 1]


def compare_arms(regressor, tables: dict[str, pd.DataFrame], n_splits: int, seed: int,
                 tuning: FineTuning, workdir: Path | None = None, progress: bool = True
                 ) -> tuple[pd.DataFrame, dict]:
    """Both arms on the same repeated splits of every disease: one row per disease, split and
    arm with the four test-set metrics, plus a logistic-regression reference row per split;
    also returns the classifiers of split 0 (for SHAP)."""
    from tqdm.auto import tqdm

    rows, first = [], {}
    templates = {arm: classifier_model(regressor, arm, tuning) for arm in ARMS}
    jobs = [(d, s, a) for d, t in tables.items()
            for s in repeated_splits(t[LABEL], n_splits, seed) for a in ARMS]
    bars = transformer_clock.shows_bars(progress)
    for disease, split, arm in tqdm(jobs, desc="classifiers", disable=not bars, mininterval=10.0):
        table = tables[disease]
        model = fit_classifier(regressor, table, split, arm, tuning, seed + split["split"],
                               workdir, templates[arm])
        test = table.loc[split["test"]]
        scores = classification_metrics(test[LABEL], case_probability(model, test))
        rows.append({"disease": disease, "split": split["split"], "arm": arm, **scores})
        if split["split"] == 0:
            first[(disease, arm)] = model
        if arm == ARMS[-1]:
            reference = logistic_reference(table, split, regressor.space.genes)
            rows.append({"disease": disease, "split": split["split"], "arm": REFERENCE,
                         **classification_metrics(test[LABEL], reference)})
    return pd.DataFrame(rows), first


def shown_table8(table: pd.DataFrame) -> pd.DataFrame:
    """Supplementary Table 8 (:func:`paired_tests`) as a page prints it: each arm's mean ± sd,
    the difference, the paired tests (the refusal where there are too few splits) and the
    logistic reference."""
    def mean_sd(arm: str) -> pd.Series:
        return pd.Series([wording.mean_sd(m, s) for m, s in
                          zip(table[f"{arm}_mean"], table[f"{arm}_sd"], strict=True)],
                         index=table.index)

    out = table.assign(pretrained=mean_sd("pretrained"), scratch=mean_sd("scratch"))
    if "reference_mean" in table:
        out["logistic_reference"] = mean_sd("reference")
    refused = out["splits"] < MIN_PAIRED_SPLITS
    if refused.any():  # numbers stay numbers where every test was run
        for column in ("t_test_p", "wilcoxon_p"):
            out[column] = out[column].astype(object)
            out.loc[refused, column] = [wording.too_few(n, MIN_PAIRED_SPLITS, "splits")
                                        for n in out.loc[refused, "splits"]]
    order = ["disease", "metric", "splits", "pretrained", "scratch", "difference", "t_test_p",
             "wilcoxon_p", "logistic_reference"]
    return out[[c for c in order if c in out.columns]]


def paired_tests(results: pd.DataFrame) -> pd.DataFrame:
    """Supplementary Table 8: per disease and metric, mean +/- sd of each arm over splits, the
    paired difference (pretrained - scratch), a paired t-test and a Wilcoxon signed-rank test
    (exact; with n splits its smallest two-sided p is 2 / 2^n). Below ``MIN_PAIRED_SPLITS``
    splits both p-values are NaN: the tests are refused, not reported."""
    rows = []
    for (disease, metric), part in results.melt(
            id_vars=["disease", "split", "arm"], value_vars=list(METRICS),
            var_name="metric").groupby(["disease", "metric"], sort=False):
        wide = part.pivot(index="split", columns="arm", values="value")
        diff = wide["pretrained"] - wide["scratch"]
        if len(wide) < MIN_PAIRED_SPLITS:  # refused: too few splits to carry a verdict
            t_p = w_p = float("nan")
        else:
            t_p = stats.ttest_rel(wide["pretrained"], wide["scratch"]).pvalue \
                if diff.std() > 0 else (1.0 if diff.mean() == 0 else 0.0)
            w_p = stats.wilcoxon(diff).pvalue if (diff != 0).any() else 1.0
        rows.append({"disease": disease, "metric": metric, "splits": len(wide),
                     "pretrained_mean": wide["pretrained"].mean(),
                     "pretrained_sd": wide["pretrained"].std(),
                     "scratch_mean": wide["scratch"].mean(),
                     "scratch_sd": wide["scratch"].std(),
                     "difference": diff.mean(), "t_test_p": float(t_p),
                     "wilcoxon_p": float(w_p),
                     **({"reference_mean": wide[REFERENCE].mean(),
                         "reference_sd": wide[REFERENCE].std()} if REFERENCE in wide else {})})
    return pd.DataFrame(rows)
