"""The HallmarkAge chapters' shared entry points: a scored dataset (simulated atlas or real
PBMCs) with its detection report, kept gene sets, scores and, for the atlas, planted truth;
and the clock study both clock chapters use, computed once and cached by its inputs."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers.data import loaders
from helpers.data.cache import cached_object
from helpers.hallmarkage import (
    atlas_simulator,
    hallmark_clocks,
    hallmark_scoring,
    hallmark_sets,
    pseudobulk,
)


@dataclass
class Scored:
    """A dataset scored on every kept hallmark."""

    adata: ad.AnnData
    report: pd.DataFrame  # detection report, one row per hallmark
    gene_sets: dict[str, list[str]]  # kept hallmarks: '<framework>__<hallmark>' -> genes
    scores: pd.DataFrame  # cells x 'score_<framework>__<hallmark>'
    truth: pd.DataFrame | None = None  # planted status per kept hallmark (simulated only)
    programs: pd.DataFrame | None = None


def score(adata: ad.AnnData, min_detected: int = hallmark_sets.MIN_DETECTED,
          ctrl_size: int = 50, n_bins: int = 25, seed: int = 0) -> Scored:
    """Detect every framework's genes in ``adata``, keep hallmarks with enough genes and score
    them all (one pass, scanpy's rules), writing the scores into ``adata.obs``."""
    report = hallmark_sets.detection_report(hallmark_sets.load_frameworks(), adata.var_names,
                                            min_detected=min_detected)
    sets = hallmark_sets.kept_gene_sets(report)
    scores = hallmark_scoring.score_gene_sets(adata, sets, ctrl_size=ctrl_size, n_bins=n_bins,
                                              random_state=seed)
    hallmark_scoring.add_scores(adata, scores)
    return Scored(adata, report, sets, scores)


def scored_atlas(profile: str, seed: int, **kwargs) -> Scored:
    """The simulated muscle atlas of a profile and seed, scored, with its planted truth."""
    atlas = atlas_simulator.atlas_for(profile, seed)
    scored = score(atlas.adata, seed=seed, **kwargs)
    scored.truth = atlas_simulator.hallmark_truth(
        scored.report, atlas.programs, atlas_simulator.load_design()["null_hallmarks"])
    scored.programs = atlas.programs
    return scored


def scored_pbmc(seed: int, **kwargs) -> Scored:
    """The real PBMCs (scanpy's pbmc68k_reduced, hash verified), scored."""
    return score(loaders.load_pbmc68k_reduced(), seed=seed, **kwargs)


@dataclass
class ClockStudy:
    """The hallmark clocks of an atlas: metacells, donor folds, out-of-fold and refitted
    predictions, the clocks refitted on every donor and Table S3."""

    metacells: pseudobulk.Metacells
    folds: pd.Series
    predictions: pd.DataFrame  # out-of-fold ('test') and refitted ('train') predictions
    penalties: pd.DataFrame
    clocks: dict
    table: pd.DataFrame
    chosen: str


def clock_study(scored: Scored, settings: hallmark_clocks.Settings, k: int, per_unit: int,
                n_folds: int, n_boot: int = 1000) -> ClockStudy:
    """Metacells of a scored atlas, the three clocks cross-validated over donor folds and
    refitted on all donors, Table S3 with bootstrap intervals, and the clock chosen by held-out
    donor-level MAE."""
    seed = settings.seed
    metacells = pseudobulk.build(scored.adata, scored.scores, k, per_unit, seed)
    folds = hallmark_clocks.donor_folds(scored.adata.obs, n_folds, seed)
    held_out, penalties = hallmark_clocks.cross_validate(scored.adata, metacells, folds,
                                                         settings, gene_sets=scored.gene_sets)
    clocks, fitted = hallmark_clocks.refit_all(scored.adata, metacells, settings)
    predictions = pd.concat([fitted, held_out])
    table = hallmark_clocks.performance_table(predictions, n_boot, seed)
    return ClockStudy(metacells, folds, predictions, penalties, clocks, table,
                      hallmark_clocks.select_clock(table))


def scored_digest(scored: Scored) -> str:
    """A digest of a scored dataset's content: counts, cell and gene labels, scores."""
    digest = hashlib.blake2b(digest_size=16)
    x = scored.adata.X
    parts = (x.data, x.indices, x.indptr) if sp.issparse(x) else (np.asarray(x),)
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes())
    digest.update(pd.util.hash_pandas_object(scored.adata.obs, index=True).to_numpy().tobytes())
    digest.update("\0".join(map(str, scored.adata.var_names)).encode())
    digest.update(pd.util.hash_pandas_object(scored.scores, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def clock_code_version() -> str:
    """A hash of the code a clock study runs: a cached study is not reused across changes."""
    from helpers.common import expression

    digest = hashlib.sha256()
    for module in (pseudobulk, hallmark_clocks, expression):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def shared_clock_study(scored: Scored, settings: hallmark_clocks.Settings, k: int,
                       per_unit: int, n_folds: int, n_boot: int = 1000) -> ClockStudy:
    """:func:`clock_study`, computed once per inputs (the scored data's digest, every setting,
    the code's version) and read from the cache by any later chapter or run with the same
    inputs: the two clock chapters share one study."""
    params = {"data": scored_digest(scored), "settings": dataclasses.asdict(settings),
              "k": k, "per_unit": per_unit, "n_folds": n_folds, "n_boot": n_boot,
              "code": clock_code_version()}
    return cached_object("hallmark-clock-study", params,
                         lambda: clock_study(scored, settings, k, per_unit, n_folds, n_boot))
