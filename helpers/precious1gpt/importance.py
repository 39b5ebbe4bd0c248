"""SHAP gene rankings for the regressor and the case-control classifiers (paper: Methods,
"Feature importance analysis"; Supplementary Tables 3-7).

``shap.GradientExplainer`` (expected gradients) explains a wrapper that maps the gene features
to the network's output for one fixed tissue and modality. TabTransformer's attention sees only
the categorical inputs, so their part of the representation is a constant for a fixed tissue
and modality: the wrapper computes it once and runs the gene path (BatchNorm, concatenation,
MLP head) per call. It reproduces the model's own predictions (``check_wrapper``). Samples are
explained against background samples of their own tissue and modality, so a gene's SHAP value
says how it moves a prediction away from that tissue's typical sample.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from helpers.precious1gpt.multimodal import CATEGORICAL
from helpers.precious1gpt.transfer import category_codes


def gene_response(network, codes: np.ndarray, output: str, target_transform=None):
    """A torch module: gene features (n x genes) -> the network's output for one tissue and
    modality (``codes``: their ordinal codes). ``output`` is ``years`` (regression; the target
    scaling undone) or ``log_odds`` (log P(case) / P(control) of a two-class classifier)."""
    import torch

    if output not in ("years", "log_odds"):
        raise ValueError(f"output must be 'years' or 'log_odds', not {output!r}")

    class GeneResponse(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network.eval()
            backbone = network.backbone
            with torch.no_grad():
                cat = network.embed_input({"categorical": torch.as_tensor(codes).reshape(1, -1)})
                zeros = torch.zeros(1, backbone.hparams.continuous_dim)
                full = backbone(cat, zeros)
            self.register_buffer("categorical_part", full[:, :-backbone.hparams.continuous_dim])
            scale, shift = 1.0, 0.0
            if target_transform is not None:
                scale = float(target_transform.scale_[0])
                shift = float(target_transform.mean_[0])
            self.scale, self.shift = scale, shift

        def forward(self, genes):
            backbone = self.network.backbone
            if backbone.hparams.batch_norm_continuous_input:
                genes = backbone.normalizing_batch_norm(genes)
            hidden = torch.cat([self.categorical_part.expand(len(genes), -1), genes], 1)
            logits = self.network.compute_head(hidden)["logits"]
            if output == "log_odds":
                return logits[:, 1:2] - logits[:, 0:1]
            return logits * self.scale + self.shift

    return GeneResponse()


def wrapper_for(tabular_model, rows: pd.DataFrame, output: str):
    """The gene response of a fitted ``TabularModel`` for the tissue and modality of ``rows``
    (which must share one)."""
    groups = rows[list(CATEGORICAL)].drop_duplicates()
    if len(groups) != 1:
        raise ValueError(f"rows span {len(groups)} tissue/modality groups; explain one at a time")
    codes = category_codes(tabular_model.datamodule.categorical_encoder, groups)[0]
    transform = None
    if output == "years":
        transform = tabular_model.datamodule.target_transforms[0]
    return gene_response(tabular_model.model, codes, output, transform)


def wrapper_output(wrapper, rows: pd.DataFrame, genes: list[str]) -> np.ndarray:
    """The wrapper evaluated on encoded rows (no gradient)."""
    import torch

    with torch.no_grad():
        return wrapper(torch.as_tensor(rows[genes].to_numpy(np.float32))).numpy().ravel()


def model_output(tabular_model, rows: pd.DataFrame, output: str) -> np.ndarray:
    """The fitted model's own prediction through pytorch-tabular's ``predict``: years, or the
    log-odds of case computed from its class probabilities."""
    import tempfile
    from pathlib import Path

    from helpers.precious1gpt.transformer_clock import quiet_training

    with tempfile.TemporaryDirectory() as tmp, quiet_training(Path(tmp)):
        out = tabular_model.predict(rows.drop(columns=["age", "case"], errors="ignore"))
    if output == "years":
        return out["age_prediction"].to_numpy(dtype=float)
    p = out["case_1_probability"].to_numpy(dtype=float)
    return np.log(p) - np.log1p(-p)


def check_wrapper(tabular_model, rows: pd.DataFrame, genes: list[str], output: str) -> float:
    """The largest absolute difference between wrapper and model over ``rows``, one wrapper per
    tissue/modality group: the wrapper must reproduce the model before its SHAP values mean
    anything."""
    gaps = []
    for _, group in rows.groupby(list(CATEGORICAL), observed=True):
        wrapper = wrapper_for(tabular_model, group, output)
        mine = wrapper_output(wrapper, group, genes)
        gaps.append(float(np.abs(mine - model_output(tabular_model, group, output)).max()))
    return max(gaps)


def shap_group(wrapper, explain: pd.DataFrame, background: pd.DataFrame, genes: list[str],
               nsamples: int, seed: int) -> pd.DataFrame:
    """Expected-gradient SHAP values (samples x genes) of one tissue/modality group."""
    import shap
    import torch

    torch.manual_seed(seed)
    explainer = shap.GradientExplainer(
        wrapper, torch.as_tensor(background[genes].to_numpy(np.float32)), batch_size=nsamples)
    values = explainer.shap_values(torch.as_tensor(explain[genes].to_numpy(np.float32)),
                                   nsamples=nsamples, rseed=seed)
    return pd.DataFrame(np.asarray(values).reshape(len(explain), len(genes)),
                        index=explain.index, columns=genes)


def complete_categories(tabular_model, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with every categorical input the model takes: a ``tissue`` or ``modality`` column
    the rows lack is filled with the model's only level of it (a clock of one tissue needs no
    tissue column); when the model knows several levels, the missing column is an error."""
    absent = [c for c in CATEGORICAL if c not in rows.columns]
    if not absent:
        return rows
    mapping = tabular_model.datamodule.categorical_encoder._mapping
    rows = rows.copy()
    for column in absent:
        levels = [str(v) for v in mapping[column].index if str(v) != "__NA__"]
        if len(levels) != 1:
            raise ValueError(f"rows lack the {column!r} column and the model knows {len(levels)}"
                             f" levels of it ({levels[:5]}); add it")
        rows[column] = levels[0]
    return rows


def explain(tabular_model, explain_rows: pd.DataFrame, background_rows: pd.DataFrame,
            genes: list[str], output: str, n_background: int = 50, nsamples: int = 200,
            seed: int = 0) -> pd.DataFrame:
    """SHAP values of every row of ``explain_rows``, group by group (tissue and modality), each
    against up to ``n_background`` background rows of the same group (a categorical column the
    rows lack is the model's single level, :func:`complete_categories`)."""
    explain_rows = complete_categories(tabular_model, explain_rows)
    background_rows = complete_categories(tabular_model, background_rows)
    parts = []
    for key, rows in explain_rows.groupby(list(CATEGORICAL), observed=True, sort=True):
        same = (background_rows[CATEGORICAL[0]] == key[0]) & (
            background_rows[CATEGORICAL[1]] == key[1])
        pool = background_rows.loc[same]
        if pool.empty:
            raise ValueError(f"no background rows for tissue {key[0]!r}, modality {key[1]!r}")
        background = pool.sample(min(n_background, len(pool)), random_state=seed)
        wrapper = wrapper_for(tabular_model, rows, output)
        parts.append(shap_group(wrapper, rows, background, genes, nsamples, seed))
    return pd.concat(parts).loc[explain_rows.index]


def stratified_rows(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """About ``n`` rows spread over tissue/modality groups in proportion to their size, at
    least one per group."""
    share = n / len(table)
    picks = [rows.sample(max(1, int(round(share * len(rows)))), random_state=seed)
             for _, rows in table.groupby(list(CATEGORICAL), observed=True, sort=True)]
    return pd.concat(picks) if n < len(table) else table


def rank_genes(shap_values: pd.DataFrame, features: pd.DataFrame, modality: pd.Series,
               measured_in: pd.Series | None = None) -> pd.DataFrame:
    """Genes ranked by mean absolute SHAP over the explained samples, with each modality's
    share, the modality that carries most of it, and the direction of effect in that modality:
    the sign of the correlation between the gene's value and its SHAP value (+: a higher value
    raises the output, i.e. older, or more case-like)."""
    mean_abs = shap_values.abs().mean()
    out = pd.DataFrame({"mean_abs_shap": mean_abs})
    directions = {}
    for name, ids in shap_values.groupby(modality.loc[shap_values.index]).groups.items():
        out[f"mean_abs_shap_{name}"] = shap_values.loc[ids].abs().sum() / len(shap_values)
        directions[name] = _direction(shap_values.loc[ids], features.loc[ids])
    per_modality = out.filter(like="mean_abs_shap_")
    out["modality"] = per_modality.idxmax(axis=1).str.replace("mean_abs_shap_", "")
    out["direction"] = [directions[m].get(g, 0.0) for g, m in out["modality"].items()]
    if measured_in is not None:
        out["measured_in"] = measured_in.reindex(out.index)
    out = out.sort_values("mean_abs_shap", ascending=False)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.index.name = "gene"
    return out


def _direction(shap_values: pd.DataFrame, features: pd.DataFrame) -> pd.Series:
    """Sign (+1, -1, 0) of each gene's correlation between feature value and SHAP value."""
    x = features[shap_values.columns].astype(float)
    xc, sc = x - x.mean(), shap_values - shap_values.mean()
    covariance = (xc * sc).sum()
    return np.sign(covariance.where(covariance.abs() > 1e-12, 0.0))


def top_precision(ranking: pd.DataFrame, planted: set[str], k: int) -> dict[str, float]:
    """Of the top ``k`` genes: how many are planted (precision), the share of planted genes
    found (recall), and the best precision possible (all planted genes first)."""
    top = set(ranking.index[:k])
    hits = len(top & planted)
    return {"top_k": k, "planted_genes": len(planted), "hits": hits, "precision": hits / k,
            "recall": hits / len(planted) if planted else np.nan,
            "best_possible_precision": min(len(planted), k) / k}


def shap_timing(tabular_model, rows: pd.DataFrame, genes: list[str], output: str,
                n_background: int = 50, nsamples: int = 200, seed: int = 0) -> float:
    """Seconds to explain ``rows`` (one run), for the benchmark."""
    start = time.perf_counter()
    explain(tabular_model, rows, rows, genes, output, n_background, nsamples, seed)
    return time.perf_counter() - start
