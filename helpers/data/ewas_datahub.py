"""EWAS Data Hub age set: the methylation matrix and its sample sheet (Precious1GPT's 8,374
training methylomes). The files are out of reach on the build machines; the readers below take
the real format and are tested on small files of that format.

Matrix format (``age_methylation_v1.txt``, tab-separated, possibly inside a zip): a header row
of sample ids (first cell ``sample_id`` or empty), then metadata rows (``age``, ``tissue``...),
then one row per probe (``cg...``, ``ch...``) of beta values, ``NA`` where missing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from helpers.data.formats import MISSING, DataFormatError, numeric_rows, open_text, require_unique
from helpers.data.registry import fetch, load_registry

PROBE_ID = re.compile(r"^(cg|ch\.|rs)\w*")


def _fields(line: str) -> list[str]:
    return line.rstrip("\r\n").split("\t")


def _parse_age(values: list[str], samples: list[str], path) -> np.ndarray:
    ages = np.empty(len(values))
    for i, (sample, value) in enumerate(zip(samples, values, strict=True)):
        if value.strip() in MISSING:
            raise DataFormatError(f"{path}: missing value in field 'age' of sample {sample!r}")
        try:
            ages[i] = float(value)
        except ValueError:
            raise DataFormatError(f"{path}: non-numeric field 'age' of sample {sample!r}: "
                                  f"{value!r}") from None
    return ages


def read_age_matrix(path: Path | str, probes: Iterable[str] | None = None) -> ad.AnnData:
    """Read an EWAS Data Hub methylation matrix into samples x probes (``probes`` keeps only
    those rows, e.g. the TSS200 probes: the full file is 22 GB). obs holds the metadata rows."""
    wanted = set(probes) if probes is not None else None
    with open_text(path) as stream:
        header = stream.readline()
        if not header:
            raise DataFormatError(f"{path}: empty file")
        samples = _fields(header)[1:]
        require_unique(samples, "sample ids", path)
        metadata, line_number = {}, 1
        line = stream.readline()
        while line and not PROBE_ID.match(line):
            line_number += 1
            fields = _fields(line)
            if fields[0] != fields[0].strip():
                raise DataFormatError(f"{path}: line {line_number} starts with the field "
                                      f"{fields[0]!r}, which has surrounding spaces (a probe id "
                                      "or metadata name written with them is refused)")
            if len(fields) != len(samples) + 1:
                raise DataFormatError(f"{path}: metadata field {fields[0]!r} has "
                                      f"{len(fields) - 1} values for {len(samples)} samples")
            metadata[fields[0].strip().lower()] = fields[1:]
            line = stream.readline()
        if "age" not in metadata:
            raise DataFormatError(f"{path}: no metadata field 'age' before the probe rows")
        probe_lines = enumerate(itertools.chain([line] if line else [], stream),
                                start=line_number + 1)
        ids, matrix = numeric_rows(((n, _fields(text)) for n, text in probe_lines if text.strip()),
                                   len(samples), path, "probe ids", value_range=(0, 1),
                                   keep=wanted)
    if not ids:
        raise DataFormatError(f"{path}: no probe rows" + (" of the requested probes"
                                                         if wanted is not None else ""))
    obs = pd.DataFrame({k: v for k, v in metadata.items() if k != "age"},
                       index=pd.Index(samples, name="sample_id"))
    obs.insert(0, "age", _parse_age(metadata["age"], samples, path))
    adata = ad.AnnData(X=matrix.T.copy(), obs=obs, var=pd.DataFrame(index=pd.Index(ids)))
    adata.uns["missing_values"] = int(np.isnan(matrix).sum())
    adata.uns["modality"] = "methylation"
    return adata


def read_sample_sheet(path: Path | str) -> pd.DataFrame:
    """Read the EWAS Data Hub sample sheet (tab-separated; ``sample_id`` and ``age`` needed)."""
    with open_text(path) as stream:
        table = pd.read_csv(stream, sep="\t", dtype=str, keep_default_na=False)
    table.columns = [c.strip().lower() for c in table.columns]
    missing = [c for c in ("sample_id", "age") if c not in table.columns]
    if missing:
        raise DataFormatError(f"{path}: missing field(s) {missing}")
    require_unique(table["sample_id"], "sample ids in field 'sample_id'", path)
    table = table.set_index("sample_id")
    table["age"] = _parse_age(list(table["age"]), list(table.index), path)
    return table


def join_sample_sheet(matrix: ad.AnnData, sheet: pd.DataFrame, path) -> ad.AnnData:
    """Add the sample sheet's fields to the matrix's samples; every sample must be in the sheet
    and the two ages must agree."""
    absent = matrix.obs_names.difference(sheet.index)
    if len(absent):
        raise DataFormatError(f"{path}: field 'sample_id' lacks {len(absent)} matrix samples, "
                              f"e.g. {list(absent[:3])}")
    rows = sheet.loc[matrix.obs_names]
    differ = ~np.isclose(rows["age"].to_numpy(), matrix.obs["age"].to_numpy())
    if differ.any():
        raise DataFormatError(f"{path}: field 'age' disagrees with the matrix for samples "
                              f"{list(matrix.obs_names[differ][:3])}")
    out = matrix.copy()
    for column in rows.columns.difference(out.obs.columns):
        out.obs[column] = rows[column].to_numpy()
    return out


def load_age_methylation(probes: Iterable[str] | None = None) -> ad.AnnData:
    """The real EWAS Data Hub age set (fetched by hash), with its sample sheet joined."""
    registry = load_registry()
    matrix_path = fetch("ewas_age_methylation", registry)
    sheet_path = fetch("ewas_age_samples", registry)
    adata = join_sample_sheet(read_age_matrix(matrix_path, probes),
                              read_sample_sheet(sheet_path), sheet_path)
    adata.uns["provenance"] = {k: registry[k].provenance
                               for k in ("ewas_age_methylation", "ewas_age_samples")}
    return adata
