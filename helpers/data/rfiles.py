"""R data files (.rda / .rdata / .RData) as pandas and AnnData: one function, :func:`read_r`.

The bytes are parsed by the book's XDR reader (:mod:`helpers.data.rdata_xdr`), and each R
object is converted by what it is:

=====================================  ===================================================
R object                               Python object
=====================================  ===================================================
``data.frame`` (also data.table,       ``pandas.DataFrame`` (row names as the index, or a
tibble)                                 default index for R's automatic ones)
matrix (a vector with ``dim``)         ``pandas.DataFrame`` with the dimnames
factor                                 ``pandas.Categorical``
named atomic vector                    ``pandas.Series``
unnamed atomic vector                  ``numpy.ndarray`` (NA: NaN, None or pandas' NA)
named list / environment               ``dict`` (converted recursively)
unnamed list                           ``list``
S4 ``DataFrame`` (S4Vectors)           ``pandas.DataFrame``
S4 ``AnnotatedDataFrame``              ``pandas.DataFrame`` (its ``data`` slot)
S4 ``ExpressionSet`` (Biobase)         ``anndata.AnnData``: samples x features, ``obs`` the
                                        phenoData, ``var`` the featureData, ``exprs`` in X
                                        and any other assay as a layer
=====================================  ===================================================

Anything else (another S4 class, a function, a date class) raises
:class:`~helpers.data.formats.DataFormatError` naming the file and the object. The ``rdata``
library is the reference: ``tests/test_rfiles.py`` checks both agree on every kind above.
Only call this on a file whose hash was verified (:func:`helpers.data.registry.fetch`): R data
files are parsed, never executed, but the rule is the book's for every format.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from helpers.data import rdata_xdr
from helpers.data.formats import DataFormatError
from helpers.data.rdata_xdr import (
    ENVSXP,
    INTSXP,
    LGLSXP,
    LISTSXP,
    REALSXP,
    S4SXP,
    STRSXP,
    VECSXP,
    RObject,
)

R_NA_INTEGER = -(2 ** 31)
ATOMIC = (LGLSXP, INTSXP, REALSXP, STRSXP)


def read_r(path: Path | str, name: str | None = None):
    """Every top-level object of an R data file, converted (see the module table), as a dict
    name -> object; with ``name``, that object only (an absent name is an error listing the
    names present)."""
    path = Path(path)
    try:
        objects = rdata_xdr.read_rda(path)
    except (ValueError, EOFError, NotImplementedError, OSError) as error:
        raise DataFormatError(f"{path}: not a readable R data file ({error})") from error
    if name is not None:
        if name not in objects:
            raise DataFormatError(f"{path}: no R object named {name!r} (found {list(objects)})")
        return to_python(objects[name], f"{path}: object {name!r}")
    return {key: to_python(obj, f"{path}: object {key!r}") for key, obj in objects.items()}


def r_classes(obj) -> list[str]:
    """The R class attribute of an object (empty when it has none)."""
    if not isinstance(obj, RObject):
        return []
    cls = obj.attributes.get("class")
    return [str(c) for c in cls.value] if isinstance(cls, RObject) else []


def to_python(obj, where: str = "R object"):
    """One parsed R object as pandas / numpy / AnnData / dict / list (see the module table);
    ``where`` names it in errors (file and object)."""
    if obj is None:
        return None
    if not isinstance(obj, RObject):
        raise DataFormatError(f"{where}: unsupported R value {type(obj).__name__}")
    classes = r_classes(obj)
    if obj.type == S4SXP:
        return _s4(obj, classes, where)
    if obj.type == ENVSXP:
        return {str(k): to_python(v, f"{where}${k}") for k, v in obj.value.items()}
    if obj.type == VECSXP:
        if "data.frame" in classes:
            return data_frame(obj, where)
        names = _names(obj)
        items = [to_python(v, f"{where}[[{i + 1}]]") for i, v in enumerate(obj.value)]
        return dict(zip(names, items, strict=True)) if names is not None else items
    if obj.type == LISTSXP:
        return {str(k): to_python(v, f"{where}${k}") for k, v in obj.value.items()}
    if obj.type in ATOMIC:
        if "factor" in classes:
            return factor(obj, where)
        if {"Date", "POSIXct", "difftime"} & set(classes):
            raise DataFormatError(f"{where}: R class {classes} (dates and times) is not "
                                  "converted; export it as text or numbers")
        dim = obj.attributes.get("dim")
        if isinstance(dim, RObject) and len(dim.value) == 2:
            return matrix(obj, where)
        values = atomic_values(obj)
        names = _names(obj)
        return pd.Series(values, index=names) if names is not None else values
    raise DataFormatError(f"{where}: R object type {obj.type} (class {classes}) is not "
                          "converted")


def atomic_values(obj: RObject) -> np.ndarray:
    """An atomic vector's values with R's NAs as NaN (numbers), None (strings) or pandas' NA
    (logicals and integers that hold NA)."""
    values = obj.value
    if obj.type == LGLSXP:
        missing = values == R_NA_INTEGER
        if missing.any():
            return pd.array(np.where(missing, None, values.astype(bool)), dtype="boolean")
        return values.astype(bool)
    if obj.type == INTSXP:
        missing = values == R_NA_INTEGER
        if missing.any():
            return pd.array(np.where(missing, None, values), dtype="Int64")
        return values.astype(np.int64)
    if obj.type == REALSXP:
        return values.astype(np.float64)
    return np.asarray(values, dtype=object)


def factor(obj: RObject, where: str) -> pd.Categorical:
    """An R factor: 1-based codes into its levels (NA code: missing)."""
    levels = obj.attributes.get("levels")
    if not isinstance(levels, RObject):
        raise DataFormatError(f"{where}: factor without levels")
    codes = np.where(obj.value == R_NA_INTEGER, -1, obj.value - 1)
    ordered = "ordered" in r_classes(obj)
    return pd.Categorical.from_codes(codes, categories=list(levels.value), ordered=ordered)


def matrix(obj: RObject, where: str) -> pd.DataFrame:
    """An R matrix (stored column by column) with its row and column names."""
    n_rows, n_cols = (int(v) for v in obj.attributes["dim"].value)
    values = atomic_values(RObject(obj.type, obj.value))
    values = np.asarray(values).reshape((n_rows, n_cols), order="F")
    rows = cols = None
    dimnames = obj.attributes.get("dimnames")
    if isinstance(dimnames, RObject):
        parts = [None if p is None else list(p.value) for p in dimnames.value]
        rows, cols = (parts + [None, None])[:2]
    return pd.DataFrame(values, index=rows, columns=cols)


def data_frame(obj: RObject, where: str) -> pd.DataFrame:
    """An R data.frame: columns converted one by one, R's row names as the index (R's
    automatic row names, 1..n, become a default index)."""
    names = _names(obj)
    if names is None:
        raise DataFormatError(f"{where}: data.frame without column names")
    columns = {}
    for name, column in zip(names, obj.value, strict=True):
        value = to_python(column, f"{where}${name}")
        if isinstance(value, pd.DataFrame | dict | list):
            raise DataFormatError(f"{where}: column {name!r} is not a plain column")
        columns[name] = value.to_numpy() if isinstance(value, pd.Series) else value
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataFormatError(f"{where}: columns of different lengths {lengths}")
    frame = pd.DataFrame(columns)
    rownames = obj.attributes.get("row.names")
    if isinstance(rownames, RObject) and not _automatic_rownames(rownames):
        index = atomic_values(rownames)
        if len(index) != len(frame):
            raise DataFormatError(f"{where}: {len(index)} row names for {len(frame)} rows")
        frame.index = pd.Index(np.asarray(index))
    return frame


def _automatic_rownames(rownames: RObject) -> bool:
    """R's compact form of 1..n row names: c(NA_integer_, -n) (or +n)."""
    values = rownames.value
    return rownames.type == INTSXP and len(values) == 2 and values[0] == R_NA_INTEGER


def _names(obj: RObject) -> list[str] | None:
    names = obj.attributes.get("names")
    return [str(n) for n in names.value] if isinstance(names, RObject) else None


def _slot(obj: RObject, slot: str, where: str):
    if slot not in obj.attributes:
        raise DataFormatError(f"{where}: S4 object of class {r_classes(obj)} has no slot "
                              f"{slot!r}")
    return obj.attributes[slot]


def _s4(obj: RObject, classes: list[str], where: str):
    """The S4 classes the book meets: S4Vectors DataFrame, AnnotatedDataFrame, ExpressionSet."""
    if {"DFrame", "DataFrame"} & set(classes):
        rownames, columns = rdata_xdr.s4_dataframe_columns(obj, where)
        return pd.DataFrame(columns, index=None if rownames is None else pd.Index(rownames))
    if "AnnotatedDataFrame" in classes:
        return to_python(_slot(obj, "data", where), f"{where}@data")
    if "ExpressionSet" in classes:
        return expression_set(obj, where)
    raise DataFormatError(f"{where}: S4 class {classes} is not converted (supported: "
                          "DataFrame, AnnotatedDataFrame, ExpressionSet)")


def expression_set(obj: RObject, where: str) -> ad.AnnData:
    """A Biobase ExpressionSet as AnnData (samples x features): X = ``exprs``, other assays as
    layers, obs = phenoData, var = featureData (matched to the assay's rows by position after
    checking the counts; the assay's row names are the var names)."""
    assays = to_python(_slot(obj, "assayData", where), f"{where}@assayData")
    if not isinstance(assays, dict) or "exprs" not in assays:
        raise DataFormatError(f"{where}: assayData holds no 'exprs' matrix")
    exprs = assays.pop("exprs")
    obs = to_python(_slot(obj, "phenoData", where), f"{where}@phenoData")
    var = to_python(_slot(obj, "featureData", where), f"{where}@featureData")
    for part, table, n in (("phenoData", obs, exprs.shape[1]),
                           ("featureData", var, exprs.shape[0])):
        if len(table) not in (0, n):
            raise DataFormatError(f"{where}: {part} has {len(table)} rows for {n} "
                                  f"{'samples' if part == 'phenoData' else 'features'}")
    obs = obs if len(obs) else pd.DataFrame(index=exprs.columns)
    var = var if len(var) else pd.DataFrame(index=exprs.index)
    if list(obs.index.astype(str)) != list(exprs.columns.astype(str)):
        raise DataFormatError(f"{where}: phenoData row names do not match the samples of "
                              "exprs")
    obs.index = pd.Index(exprs.columns.astype(str), name="sample")
    var = var.set_axis(pd.Index(exprs.index.astype(str), name="feature"))
    layers = {}
    for name, assay in assays.items():
        if assay.shape != exprs.shape:
            raise DataFormatError(f"{where}: assay {name!r} has shape {assay.shape}, exprs "
                                  f"{exprs.shape}")
        layers[name] = assay.to_numpy().T
    return ad.AnnData(X=exprs.to_numpy().T, obs=obs, var=var, layers=layers or None)
