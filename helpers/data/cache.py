"""On-disk cache of expensive intermediates, keyed by the stage name and its parameters.

Tables are stored as ``.npz`` without pickles (strings as unicode arrays), so reading a cache
entry never executes code. The key changes whenever any parameter changes. Results that hold
fitted models (:func:`cached_object`, e.g. a HallmarkAge clock study shared by two chapters)
are pickled; their sha256 is recorded when they are written and checked on the very bytes that
are then unpickled, so a corrupted, truncated or swapped entry is recomputed, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.files import write_whole
from helpers.data.registry import cache_dir


def source_digest(*modules) -> str:
    """A short hash of the source files of ``modules`` (module objects or paths), in order:
    what a cached result keys on so that it is not reused after the code that made it changed."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(getattr(module, "__file__", module)).read_bytes())
    return digest.hexdigest()[:12]


def cache_key(stage: str, params: dict) -> str:
    """A short stable hash of the stage name and its JSON-serialised parameters."""
    blob = json.dumps({"stage": stage, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(stage: str, params: dict) -> Path:
    """The file a stage's result is cached in for these parameters."""
    return cache_dir() / "intermediates" / f"{stage}-{cache_key(stage, params)}.npz"


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a table of numeric and string columns to ``path`` atomically, without pickles."""
    arrays, kinds = {}, []
    for i, col in enumerate(frame.columns):
        values = frame[col].to_numpy()
        if values.dtype.kind in "biuf":
            kinds.append("num")
        elif values.dtype == object and all(isinstance(v, str) for v in values):
            values, kinds = values.astype(str), [*kinds, "str"]
        else:
            raise TypeError(f"column {col!r} of dtype {values.dtype} cannot be cached")
        arrays[f"c{i}"] = values
    meta = {"columns": [str(c) for c in frame.columns], "kinds": kinds,
            "index_name": frame.index.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, __index__=np.asarray(frame.index.astype(str), dtype=str),
             __meta__=json.dumps(meta),
             **arrays)
    tmp.replace(path)


def read_frame(path: Path) -> pd.DataFrame:
    """Read a table written by :func:`write_frame`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        data = {}
        for i, (col, kind) in enumerate(zip(meta["columns"], meta["kinds"], strict=True)):
            data[col] = z[f"c{i}"].astype(object) if kind == "str" else z[f"c{i}"]
        index = pd.Index(z["__index__"].astype(object), name=meta["index_name"])
    return pd.DataFrame(data, index=index)


def cached_frame(stage: str, params: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Return ``compute()``, reading it from the cache when these parameters were seen before."""
    path = cache_path(stage, params)
    if path.is_file():
        try:
            return read_frame(path)
        except Exception as err:  # truncated, corrupted or foreign file: say so, then rebuild
            warnings.warn(f"{path}: unreadable cache entry ({type(err).__name__}: {err}); "
                          "it is rebuilt", stacklevel=2)
            path.unlink(missing_ok=True)
    frame = compute()
    write_frame(frame, path)
    return frame


def object_paths(stage: str, params: dict) -> tuple[Path, Path]:
    """The pickle of a stage's result for these parameters and the file holding its sha256."""
    stem = cache_dir() / "objects" / f"{stage}-{cache_key(stage, params)}"
    return stem.with_suffix(".pkl"), stem.with_suffix(".sha256")


def read_object(stage: str, params: dict):
    """The cached result, or None when there is none or its bytes differ from the sha256
    recorded when it was written (the bytes are read once, checked, then unpickled)."""
    payload, digest = object_paths(stage, params)
    try:
        data, expected = payload.read_bytes(), digest.read_text().strip()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        return None
    return pickle.loads(data)  # noqa: S301 (bytes checked against the digest just above)


def write_object(stage: str, params: dict, value) -> None:
    """Pickle ``value`` and record its sha256, each written to a temporary file and renamed
    into place (the digest last: an entry is complete only once its digest exists)."""
    payload, digest = object_paths(stage, params)
    payload.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    write_whole(payload, data)
    write_whole(digest, hashlib.sha256(data).hexdigest())


def cached_object(stage: str, params: dict, compute: Callable[[], object]):
    """``compute()``, or the result a previous call (in any chapter or process) made with the
    same stage and parameters; ``params`` must name every input (data digest, settings, code
    version)."""
    found = read_object(stage, params)
    if found is not None:
        return found
    value = compute()
    write_object(stage, params, value)
    return value


def output_dir(chapter: str, profile: str, seed: int) -> Path:
    """Where a chapter keeps what it computes for a profile and seed (studies, models)."""
    return cache_dir() / "outputs" / chapter / f"{profile}-seed{seed}"


def publish_folder(partial: Path, folder: Path, marker: str) -> None:
    """Move a finished cache folder into place; when another process finished the same one
    first (its ``marker`` file exists), keep theirs (same inputs, same content) and drop ours."""
    if not (folder / marker).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        try:
            partial.rename(folder)
            return
        except OSError:
            if not (folder / marker).is_file():
                raise
    shutil.rmtree(partial, ignore_errors=True)
