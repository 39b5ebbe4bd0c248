"""Figure 2's right panel on real fetal methylomes: clocks trained on the postnatal GSE74193
brains only (no prenatal sample in any fit) predict the 65 prenatal brains (about 14-20 weeks
of gestation) and GSE69852's fetal and adult livers; does predicted age rise with gestational
age, as the paper says fetal tissue "becomes older during development"?"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import ElasticNetCV

from helpers.common import clocks, metrics
from helpers.precious1gpt import promoters

LEVELS = ("gene", "cpg")  # TSS200 gene means (the paper's design) or the CpGs themselves


@dataclass
class BrainClock:
    """An ElasticNet age clock fitted on postnatal brains: its features (genes or CpGs), the
    model, and the samples it was fitted on (kept so that tests can check none is prenatal)."""

    level: str
    features: list[str]
    model: ElasticNetCV
    trained_on: pd.Index

    def predict(self, values: pd.DataFrame) -> pd.Series:
        """Predicted ages of the rows of ``values`` (samples x features; every feature of the
        clock must be there: missing ones are an error, never imputed)."""
        missing = [f for f in self.features if f not in values.columns]
        if missing:
            raise clocks.MissingFeaturesError(
                f"{len(missing)} of the clock's {len(self.features)} {self.level} features are "
                f"missing, e.g. {missing[:3]}")
        block = values[self.features]
        if block.isna().any().any():
            raise ValueError(f"{int(block.isna().any(axis=1).sum())} sample(s) lack a value "
                             f"for some of the clock's {self.level} features")
        return pd.Series(self.model.predict(block.to_numpy(np.float64)), index=values.index,
                         name="predicted")


def features(adata: ad.AnnData, level: str, probe_map: pd.DataFrame | None = None
             ) -> pd.DataFrame:
    """The clock's inputs at ``level``: CpG betas, or TSS200 gene means over the CpGs measured
    (genes without a measured TSS200 probe are left out, as
    :func:`helpers.precious1gpt.promoters.gene_level_methylation`
    reports them)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose from {list(LEVELS)}")
    betas = adata.to_df()
    if level == "cpg":
        return betas
    if probe_map is None:
        raise ValueError("gene level needs the TSS200 probe map")
    genes, _ = promoters.gene_level_methylation(betas, probe_map, "TSS200")
    return genes.dropna(axis=1, how="any")


def fit_brain_clock(values: pd.DataFrame, obs: pd.DataFrame, level: str, seed: int,
                    inner_folds: int = 5, l1_ratio: float = 0.5, n_alphas: int = 30,
                    split: str | None = "train") -> BrainClock:
    """Horvath's recipe (ElasticNet, l1_ratio 0.5, the penalty chosen by an inner
    cross-validation) on the postnatal samples of ``values`` only: prenatal rows (``obs``
    column ``prenatal``) are dropped before anything is fitted, and so are the rows of
    another ``split`` (``obs`` column ``split``; None fits on every postnatal sample)."""
    eligible = ~obs["prenatal"].to_numpy(bool)
    if split is not None:
        eligible &= (obs["split"] == split).to_numpy()
    postnatal = obs.index[eligible]
    if len(postnatal) < 2 * inner_folds:
        raise ValueError(f"{len(postnatal)} postnatal samples: too few for {inner_folds}-fold "
                         "inner cross-validation")
    train = values.loc[postnatal]
    model = ElasticNetCV(l1_ratio=l1_ratio, cv=inner_folds, alphas=n_alphas, max_iter=5000,
                         tol=1e-3, selection="random", random_state=seed)
    model.fit(train.to_numpy(np.float64), obs.loc[postnatal, "age"].to_numpy(float))
    return BrainClock(level, list(values.columns), model, pd.Index(postnatal))


def development_trend(frame: pd.DataFrame, weeks: str = "gestational_weeks") -> dict:
    """Spearman correlation of predicted age with gestational age over the prenatal samples,
    and the predicted-age slope in years per week (least squares)."""
    fetal = frame.dropna(subset=[weeks])
    if len(fetal) < 3:
        raise ValueError(f"{len(fetal)} prenatal samples: a trend needs at least three")
    rho = stats.spearmanr(fetal[weeks], fetal["predicted"])
    slope = np.polyfit(fetal[weeks].to_numpy(float), fetal["predicted"].to_numpy(float), 1)[0]
    return {"n": len(fetal), "weeks_min": float(fetal[weeks].min()),
            "weeks_max": float(fetal[weeks].max()), "spearman": float(rho.statistic),
            "p": float(rho.pvalue), "slope_years_per_week": float(slope)}


def predictions(clock: BrainClock, values: pd.DataFrame, obs: pd.DataFrame, data: str
                ) -> pd.DataFrame:
    """One row per sample: age, gestational weeks, prenatal flag, predicted age, whether the
    clock was fitted on it, and the data label."""
    frame = obs[["age", "gestational_weeks", "prenatal"]].copy()
    frame["predicted"] = clock.predict(values)
    frame["in_training"] = frame.index.isin(clock.trained_on)
    frame["data"] = data
    return frame


def held_out_metrics(frame: pd.DataFrame) -> dict:
    """Age metrics of a clock on the postnatal samples it was not fitted on."""
    held_out = frame[~frame["prenatal"] & ~frame["in_training"]]
    return metrics.age_metrics(held_out["age"], held_out["predicted"])
