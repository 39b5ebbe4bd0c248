"""Baseline, hallmark-only and hybrid ridge clocks on metacells (HallmarkAge D.8, Figure 2,
Appendix K): features fitted on training donors only, donor-level folds, out-of-fold and
refitted predictions, metacell- and donor-level metrics with bootstrap intervals over donors,
and leave-one-batch-out / leave-one-dataset-out evaluation (Tables S4, S5).

The same clocks run on bulk or per-donor pseudobulk samples
(:class:`~helpers.hallmarkage.pseudobulk.Profiles`, no metacells): :func:`cross_validate_profiles`
refits, in every fold, the HVGs, scaling, PCA, hallmark scores' control genes and ridge on
training samples only."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.preprocessing import StandardScaler

from helpers.common.metrics import age_metrics
from helpers.hallmarkage import hallmark_classifiers, hallmark_scoring, pseudobulk

CLOCKS = ("baseline", "hallmark", "hybrid")
LABELS = {"baseline": "Baseline Ridge", "hallmark": "Hallmark Ridge", "hybrid": "Hybrid Ridge"}
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass
class Clock:
    """One fitted clock: the feature transforms learned on its training rows, and the ridge."""

    kind: str
    hvgs: pd.Index
    gene_scaler: StandardScaler | None
    pca: PCA | None
    hallmark_scaler: StandardScaler | None
    ridge: Ridge

    @property
    def n_pcs(self) -> int:
        return 0 if self.pca is None else self.pca.n_components_


def donor_folds(obs: pd.DataFrame, n_folds: int, seed: int = 0, donor: str = "donor",
                stratum: str = "age_group") -> pd.Series:
    """Fold of every donor: donors of each age group shuffled with the seed and dealt round
    the folds, so every fold holds young and old donors and no donor is in two folds."""
    donors = obs[[donor, stratum]].drop_duplicates().sort_values(donor)
    if donors[donor].duplicated().any():
        raise ValueError(f"a donor has more than one {stratum!r}")
    if n_folds < 2 or n_folds > len(donors):
        raise ValueError(f"n_folds={n_folds} needs 2..{len(donors)} (the donors)")
    rng = np.random.default_rng(seed)
    fold, start = {}, 0
    for _, group in donors.groupby(stratum, observed=True):
        for i, d in enumerate(rng.permutation(group[donor].astype(str).to_numpy())):
            fold[d] = (start + i) % n_folds
        start += len(group)
    return pd.Series(fold, name="fold").sort_index()


def fit_features(kind: str, metacells: pseudobulk.Metacells, rows: np.ndarray,
                 hvgs: pd.Index, n_pcs: int, seed: int) -> Clock:
    """Scaler and PCA on training metacells' HVG expression (baseline, hybrid) and a scaler on
    their mean hallmark scores (hallmark, hybrid); the ridge is fitted later."""
    gene_scaler = pca = hallmark_scaler = None
    if kind in ("baseline", "hybrid"):
        train = metacells.expression(hvgs, rows)
        gene_scaler = StandardScaler().fit(train)
        pca = PCA(n_components=min(n_pcs, train.shape[0] - 1, train.shape[1] - 1),
                  random_state=seed)
        pca.fit(np.clip(gene_scaler.transform(train), -10, 10))
    if kind in ("hallmark", "hybrid"):
        hallmark_scaler = StandardScaler().fit(metacells.hallmarks.to_numpy()[rows])
    if kind not in CLOCKS:
        raise ValueError(f"unknown clock {kind!r}; choose from {CLOCKS}")
    return Clock(kind, hvgs, gene_scaler, pca, hallmark_scaler, Ridge())


def design(clock: Clock, metacells: pseudobulk.Metacells, rows=None) -> np.ndarray:
    """The clock's feature matrix for some metacells, with transforms fitted on training rows:
    gene PCs, z-scored hallmark means, or both side by side."""
    rows = np.ones(len(metacells.obs), bool) if rows is None else np.asarray(rows)
    parts = []
    if clock.pca is not None:
        scaled = clock.gene_scaler.transform(metacells.expression(clock.hvgs, rows))
        parts.append(clock.pca.transform(np.clip(scaled, -10, 10)))
    if clock.hallmark_scaler is not None:
        parts.append(clock.hallmark_scaler.transform(metacells.hallmarks.to_numpy()[rows]))
    return np.hstack(parts)


def fit_clock(kind: str, metacells: pseudobulk.Metacells, rows: np.ndarray, hvgs: pd.Index,
              n_pcs: int = 50, alphas=ALPHAS, inner_folds: int = 3, seed: int = 0) -> Clock:
    """Fit one clock on training metacells: features, then the ridge penalty chosen by MAE in
    an inner donor-grouped cross-validation, refitted on all training rows."""
    rows = np.asarray(rows, bool)
    clock = fit_features(kind, metacells, rows, hvgs, n_pcs, seed)
    X = design(clock, metacells, rows)
    y = metacells.obs["age"].to_numpy(float)[rows]
    groups = metacells.obs["donor"].astype(str).to_numpy()[rows]
    n_inner = min(inner_folds, len(np.unique(groups)))
    search = GridSearchCV(Ridge(), {"alpha": list(alphas)}, cv=GroupKFold(n_inner),
                          scoring="neg_mean_absolute_error").fit(X, y, groups=groups)
    clock.ridge = search.best_estimator_
    return clock


def predict(clock: Clock, metacells: pseudobulk.Metacells, rows=None) -> np.ndarray:
    """Predicted ages of the given metacells."""
    return clock.ridge.predict(design(clock, metacells, rows))


@dataclass
class Settings:
    """What every clock fit shares: HVGs (and the loess span of their trend), PCs, penalties."""

    n_hvg: int = 4000
    n_pcs: int = 50
    hvg_span: float = 0.3
    alphas: tuple = ALPHAS
    seed: int = 0


def fit_clocks(adata: ad.AnnData, metacells: pseudobulk.Metacells, train_cells, train_rows,
               settings: Settings, clocks=CLOCKS) -> dict[str, Clock]:
    """The three clocks on one training side: HVGs from its cells, features and ridges from
    its metacells; nothing of the other side is seen."""
    hvgs = pseudobulk.select_hvgs(adata, train_cells, settings.n_hvg, span=settings.hvg_span)
    return {kind: fit_clock(kind, metacells, train_rows, hvgs, settings.n_pcs, settings.alphas,
                            seed=settings.seed) for kind in clocks}


def _long(metacells: pseudobulk.Metacells, rows, kind: str, split: str, predicted,
          **extra) -> pd.DataFrame:
    columns = [c for c in ("donor", "dataset", "batch", "age") if c in metacells.obs.columns]
    table = metacells.obs.loc[np.asarray(rows), columns].copy()
    return table.assign(clock=kind, split=split, predicted=predicted, **extra)


def fold_scores(adata: ad.AnnData, gene_sets: dict[str, list[str]], train_cells,
                ctrl_size: int = 50, n_bins: int = 25, seed: int = 0) -> pd.DataFrame:
    """Per-cell hallmark scores (scanpy's: set mean minus control mean) whose control genes
    come from the training cells' expression bins only."""
    train_cells = np.asarray(train_cells, bool)
    weights = hallmark_scoring.score_weights(adata[train_cells], gene_sets, ctrl_size, n_bins,
                                             seed)
    scores = adata.X @ weights
    scores = scores.toarray() if hasattr(scores, "toarray") else np.asarray(scores)
    return pd.DataFrame(scores, index=adata.obs_names, columns=list(gene_sets))


def rescored(adata: ad.AnnData, metacells: pseudobulk.Metacells,
             gene_sets: dict[str, list[str]], train_cells, ctrl_size: int = 50,
             n_bins: int = 25, seed: int = 0) -> pseudobulk.Metacells:
    """The metacells with hallmark means of :func:`fold_scores`, so that no held-out cell
    shapes a hallmark feature."""
    return _with_cell_means(metacells, fold_scores(adata, gene_sets, train_cells, ctrl_size,
                                                   n_bins, seed))


def _with_cell_means(metacells: pseudobulk.Metacells, per_cell: pd.DataFrame
                     ) -> pseudobulk.Metacells:
    """The metacells whose hallmark features are the means of ``per_cell`` (cells x hallmarks,
    in the order of the metacells' hallmark columns) over each metacell's cells."""
    means = pseudobulk.mean_over_cells(metacells.plan, per_cell)
    return dataclasses.replace(metacells, hallmarks=means.set_axis(
        metacells.hallmarks.index).set_axis(metacells.hallmarks.columns, axis=1))


def probability_metacells(adata: ad.AnnData, metacells: pseudobulk.Metacells,
                          gene_sets: dict[str, list[str]], train_cells, settings: Settings,
                          n_pcs: int = 30, low: float = 0.2, high: float = 0.8
                          ) -> pseudobulk.Metacells:
    """The metacells with the paper's hallmark features (Appendix D.7): the mean ON probability
    of each hallmark's logistic state classifier over a metacell's cells. Scores, state
    thresholds, gene PCA and classifiers are all fitted on the training cells."""
    train_cells = np.asarray(train_cells, bool)
    scores = fold_scores(adata, gene_sets, train_cells, seed=settings.seed)
    features, _ = hallmark_classifiers.gene_pca_features(adata, train_cells, settings.n_hvg,
                                                         n_pcs, settings.seed)
    _, probabilities = hallmark_classifiers.train_classifiers(
        features, scores, train_cells, models=("logistic",), low=low, high=high,
        seed=settings.seed)
    return _with_cell_means(metacells, probabilities)


def _fold_masks(adata: ad.AnnData, metacells: pseudobulk.Metacells, folds: pd.Series,
                group: str = "donor"):
    """Per fold of ``folds`` (split unit -> fold, units named by the ``group`` column of both
    sample tables): the fold, its training cells and its held-out metacell rows."""
    for table, what in ((adata.obs, "atlas cells"), (metacells.obs, "metacells")):
        if group not in table.columns:
            raise ValueError(f"{what}: no split-unit column {group!r}")
    cell_fold = adata.obs[group].astype(str).map(folds)
    row_fold = metacells.obs[group].astype(str).map(folds)
    if cell_fold.isna().any():
        raise ValueError(f"a {group} of the atlas has no fold")
    for fold in sorted(folds.unique()):
        yield fold, (cell_fold != fold).to_numpy(), (row_fold == fold).to_numpy()


def level_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """MAE and R2 of each clock's held-out predictions per metacell and per donor (the mean of
    its metacells, :func:`donor_means`): one row per level and clock, no bootstrap."""
    rows = []
    for level, table in (("Metacell", predictions), ("Donor", donor_means(predictions))):
        for kind, part in table.groupby("clock", sort=False):
            scores = age_metrics(part["age"], part["predicted"])
            rows.append({"level": level, "clock": kind, "MAE": scores["MAE"],
                         "R2": scores["R2"], "n": scores["n"]})
    return pd.DataFrame(rows)


def cross_validate_probabilities(adata: ad.AnnData, metacells: pseudobulk.Metacells,
                                 folds: pd.Series, settings: Settings,
                                 gene_sets: dict[str, list[str]], n_pcs: int = 30,
                                 low: float = 0.2, high: float = 0.8) -> pd.DataFrame:
    """The hallmark-only clock on classifier probabilities (D.7-D.8) over the donor folds:
    out-of-fold predictions, clock ``hallmark_probability``."""
    predictions = []
    for fold, train_cells, test_rows in _fold_masks(adata, metacells, folds):
        scored = probability_metacells(adata, metacells, gene_sets, train_cells, settings,
                                       n_pcs, low, high)
        clock = fit_clock("hallmark", scored, ~test_rows, pd.Index([]), settings.n_pcs,
                          settings.alphas, seed=settings.seed)
        predictions.append(_long(scored, test_rows, "hallmark_probability", "test",
                                 predict(clock, scored, test_rows), fold=fold))
    return pd.concat(predictions)


def cross_validate(adata: ad.AnnData, metacells: pseudobulk.Metacells, folds: pd.Series,
                   settings: Settings, gene_sets: dict[str, list[str]] | None = None,
                   group: str = "donor") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Donor-level K-fold: each fold's clocks are fitted without its donors and predict them;
    with ``gene_sets``, each fold's hallmark features are rescored with control genes drawn
    from its training cells (:func:`rescored`). ``group`` names the split unit in both sample
    tables (``donor``; e.g. a donor x dataset column replicates the paper's units). Returns
    the out-of-fold predictions and the chosen ridge penalty per fold and clock."""
    predictions, penalties = [], []
    whole = metacells
    for fold, train_cells, test_rows in _fold_masks(adata, metacells, folds, group):
        if gene_sets is not None:
            metacells = rescored(adata, whole, gene_sets, train_cells, seed=settings.seed)
        clocks = fit_clocks(adata, metacells, train_cells, ~test_rows, settings)
        for kind, clock in clocks.items():
            predictions.append(_long(metacells, test_rows, kind, "test",
                                     predict(clock, metacells, test_rows), fold=fold))
            penalties.append({"fold": fold, "clock": kind, "alpha": clock.ridge.alpha})
    return pd.concat(predictions), pd.DataFrame(penalties)


def refit_all(adata: ad.AnnData, metacells: pseudobulk.Metacells, settings: Settings
              ) -> tuple[dict[str, Clock], pd.DataFrame]:
    """The clocks refitted on every donor (for coefficients) and their in-sample predictions."""
    everyone = np.ones(len(metacells.obs), bool)
    clocks = fit_clocks(adata, metacells, np.ones(adata.n_obs, bool), everyone, settings)
    fitted = pd.concat([_long(metacells, everyone, kind, "train",
                              predict(clock, metacells)) for kind, clock in clocks.items()])
    return clocks, fitted


def donor_means(predictions: pd.DataFrame) -> pd.DataFrame:
    """Donor-level predictions (D.8): the mean over each donor's metacells."""
    return (predictions.groupby(["clock", "split", "donor"], observed=True)[["age", "predicted"]]
            .mean().reset_index())


def held_out_residual(predictions: pd.DataFrame, metacells: pseudobulk.Metacells,
                      kind: str) -> np.ndarray:
    """Chronological minus out-of-fold predicted age of every metacell (in metacell order)
    for one clock: the residual the diagnostics read."""
    part = predictions[(predictions["split"] == "test") & (predictions["clock"] == kind)]
    part = part.reindex(metacells.obs.index)
    return (part["age"] - part["predicted"]).to_numpy()


def _sums(table: pd.DataFrame) -> pd.DataFrame:
    """Per donor: the sufficient sums of every metric (n, errors, ages, predictions)."""
    y, p = table["age"].to_numpy(float), table["predicted"].to_numpy(float)
    frame = pd.DataFrame({"n": 1.0, "abs": np.abs(p - y), "sq": (p - y) ** 2, "y": y,
                          "yy": y * y, "p": p, "pp": p * p, "yp": y * p,
                          "donor": table["donor"].to_numpy()})
    return frame.groupby("donor", observed=True).sum()


def _metrics_from_sums(s: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, RMSE, R2 and Pearson r from summed columns (n, abs, sq, y, yy, p, pp, yp)."""
    n, ab, sq, y, yy, p, pp, yp = s.T
    syy, spp, syp = yy - y * y / n, pp - p * p / n, yp - y * p / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"MAE": ab / n, "RMSE": np.sqrt(sq / n), "R2": 1 - sq / syy,
                "pearson_r": syp / np.sqrt(syy * spp)}


def donor_resamples(n_donors: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``n_boot`` bootstrap draws of donors as counts (draws x donors): multiplied with
    per-donor sums, each row gives one resample's sums."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_donors, np.full(n_donors, 1 / n_donors), size=n_boot)


def bootstrap_ci(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                 ) -> pd.DataFrame:
    """Percentile intervals of MAE, RMSE, R2 and r when donors are resampled with replacement
    (all rows of a drawn donor go in together): the uncertainty that 17 donors leave."""
    sums = _sums(table)
    values = _metrics_from_sums(donor_resamples(len(sums), n_boot, seed) @ sums.to_numpy())
    tail = (1 - level) / 2
    return pd.DataFrame({m: np.nanquantile(v, [tail, 1 - tail]) for m, v in values.items()},
                        index=["low", "high"])


def performance_table(predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0
                      ) -> pd.DataFrame:
    """Table S3's layout: clock x level (metacell, donor) x split with MAE, RMSE, R2, Pearson
    r, n and, for every row, a 95% bootstrap interval over donors."""
    rows = []
    levels = {"Metacell": predictions, "Donor": donor_means(predictions)}
    for level, table in levels.items():
        for (kind, split), part in table.groupby(["clock", "split"], observed=True, sort=False):
            point = age_metrics(part["age"], part["predicted"])
            ci = bootstrap_ci(part, n_boot, seed)
            rows.append({"Model": LABELS[kind], "Level": level, "Split": split.title(),
                         **{m: point[m] for m in ("MAE", "RMSE", "R2", "pearson_r")},
                         **{f"{m} 95% CI": f"{ci[m]['low']:.2f} to {ci[m]['high']:.2f}"
                            for m in ("MAE", "R2")},
                         "n": point["n"], "donors": part["donor"].nunique()})
    order = {label: i for i, label in enumerate(LABELS.values())}
    table = pd.DataFrame(rows)
    return table.sort_values(["Model", "Level", "Split"], key=lambda c: c.map(order)
                             if c.name == "Model" else c.map({"Metacell": 0, "Donor": 1,
                                                              "Train": 0, "Test": 1})
                             ).reset_index(drop=True)


def select_clock(table: pd.DataFrame, level: str = "Donor") -> str:
    """The clock with the lowest held-out MAE (the paper's selection rule)."""
    test = table[(table["Split"] == "Test") & (table["Level"] == level)]
    label = test.loc[test["MAE"].idxmin(), "Model"]
    return {v: k for k, v in LABELS.items()}[label]


def held_out(adata: ad.AnnData, metacells: pseudobulk.Metacells, column: str,
             settings: Settings) -> pd.DataFrame:
    """Leave-one-out over a column (``batch``: Table S4, ``dataset``: Table S5): for each value,
    clocks fitted on every other value's cells and metacells predict that value's metacells.
    Donors are shared across sides, as in the paper: the shift tested is technical or
    compositional, not a new donor."""
    rows = []
    for value in adata.obs[column].astype(str).unique():
        test_rows = (metacells.obs[column].astype(str) == value).to_numpy()
        train_cells = (adata.obs[column].astype(str) != value).to_numpy()
        clocks = fit_clocks(adata, metacells, train_cells, ~test_rows, settings)
        truth = metacells.obs["age"].to_numpy(float)[test_rows]
        for kind, clock in clocks.items():
            m = age_metrics(truth, predict(clock, metacells, test_rows))
            rows.append({f"held-out {column}": value, "Model": LABELS[kind],
                         **{k: m[k] for k in ("MAE", "RMSE", "R2", "pearson_r")},
                         "n_train": int((~test_rows).sum()), "n_test": int(test_rows.sum())})
    return pd.DataFrame(rows).sort_values([f"held-out {column}", "Model"]).reset_index(drop=True)


def paper_ordering(table: pd.DataFrame, level: str = "Donor") -> dict:
    """Held-out MAE of each clock at a level and whether the paper's ordering holds
    (hybrid <= baseline < hallmark-only)."""
    test = table[(table["Split"] == "Test") & (table["Level"] == level)].set_index("Model")
    mae = {kind: float(test.loc[LABELS[kind], "MAE"]) for kind in CLOCKS}
    return {**mae, "holds": mae["hybrid"] <= mae["baseline"] < mae["hallmark"]}


# --- bulk or per-donor pseudobulk profiles ---------------------------------------------------

def fit_profile_clocks(profiles: pseudobulk.Profiles, gene_sets: dict[str, list[str]],
                       train_rows, settings: Settings, clocks=CLOCKS
                       ) -> tuple[dict[str, Clock], pseudobulk.Profiles]:
    """The clocks on the training samples of bulk profiles: hallmark scores with control genes
    drawn from training samples, HVGs (Seurat flavour on log values), scaling, PCA and ridge
    from training samples only. Returns the clocks and the profiles scored for them."""
    train_rows = np.asarray(train_rows, bool)
    scored = profiles.with_scores(gene_sets, train_rows, seed=settings.seed)
    hvgs = pseudobulk.select_hvgs_log(profiles, train_rows, settings.n_hvg)
    fitted = {kind: fit_clock(kind, scored, train_rows, hvgs, settings.n_pcs, settings.alphas,
                              seed=settings.seed) for kind in clocks}
    return fitted, scored


def profile_fold_fits(profiles: pseudobulk.Profiles, gene_sets: dict[str, list[str]],
                      folds: pd.Series, settings: Settings, clocks=CLOCKS):
    """For every fold (``folds``: sample -> fold, donors never split): the fold number, its
    held-out rows, and the clocks and scored profiles fitted without them
    (:func:`fit_profile_clocks`)."""
    folds = folds.reindex(profiles.obs.index)
    if folds.isna().any():
        raise ValueError(f"{int(folds.isna().sum())} samples have no fold")
    shared = folds.groupby(profiles.obs["donor"], observed=True).nunique()
    if (shared > 1).any():
        raise ValueError(f"donors in several folds: {list(shared.index[shared > 1][:3])}")
    for fold in sorted(folds.unique()):
        test_rows = (folds == fold).to_numpy()
        fitted, scored = fit_profile_clocks(profiles, gene_sets, ~test_rows, settings, clocks)
        yield int(fold), test_rows, fitted, scored


def cross_validate_profiles(profiles: pseudobulk.Profiles, gene_sets: dict[str, list[str]],
                            folds: pd.Series, settings: Settings, clocks=CLOCKS
                            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K-fold over samples grouped by donor (``folds``: sample -> fold, e.g.
    :func:`helpers.common.splits.cv_folds` with ``group="donor"``): each fold's clocks and
    hallmark scores are fitted without its samples and predict them. Returns the out-of-fold
    predictions and the ridge penalty chosen per fold and clock."""
    predictions, penalties = [], []
    for fold, test_rows, fitted, scored in profile_fold_fits(profiles, gene_sets, folds,
                                                             settings, clocks):
        for kind, clock in fitted.items():
            predictions.append(_long(scored, test_rows, kind, "test",
                                     predict(clock, scored, test_rows), fold=fold))
            penalties.append({"fold": fold, "clock": kind, "alpha": clock.ridge.alpha})
    return pd.concat(predictions), pd.DataFrame(penalties)


def mean_age_out_of_fold(obs: pd.DataFrame, folds: pd.Series) -> pd.Series:
    """The baseline every clock must beat, on the same folds: each sample predicted as the mean
    age of the samples outside its fold."""
    folds = folds.reindex(obs.index)
    means = {fold: obs.loc[folds != fold, "age"].mean() for fold in folds.unique()}
    return folds.map(means).rename("predicted")
