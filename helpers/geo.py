"""GEO series-matrix files: sample annotations (characteristics parsed into columns) and the
data table, read into samples x features (later used for GSE54848 and GSE76641).

Format: ``!Series_*`` lines, then ``!Sample_*`` lines with one quoted cell per sample (several
``!Sample_characteristics_ch1`` lines whose cells read ``key: value``), then the table between
``!series_matrix_table_begin`` and ``!series_matrix_table_end`` with an ``"ID_REF"`` header.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from helpers.loaders import DataFormatError, numeric_rows, open_text, require_unique
from helpers.registry import fetch, load_registry

BEGIN, END = "!series_matrix_table_begin", "!series_matrix_table_end"


def _cells(line: str) -> list[str]:
    return [c.strip().strip('"') for c in line.rstrip("\r\n").split("\t")]


def parse_characteristics(lines: list[list[str]], samples: list[str], path) -> pd.DataFrame:
    """``key: value`` cells of the characteristics lines into one column per key."""
    columns: dict[str, list] = {}
    for cells in lines:
        for i, cell in enumerate(cells):
            if not cell:
                continue
            key, sep, value = cell.partition(":")
            if not sep:
                raise DataFormatError(f"{path}: characteristics cell {cell!r} of sample "
                                      f"{samples[i]!r} is not 'key: value'")
            column = columns.setdefault(key.strip().lower(), [None] * len(samples))
            column[i] = value.strip()
    return pd.DataFrame(columns, index=pd.Index(samples, name="geo_accession"))


def read_series_matrix(path: Path | str, value_range: tuple[float, float] | None = None
                       ) -> ad.AnnData:
    """Read a series matrix into samples x ID_REF; obs holds the title, source, the parsed
    characteristics and every other single-line sample field. ``value_range`` (e.g. (0, 1) for
    beta values) is checked; missing values stay NaN and are counted in ``uns``."""
    sample_fields: dict[str, list[str]] = {}
    characteristics: list[list[str]] = []
    with open_text(path) as stream:
        for line in stream:
            if line.startswith(BEGIN):
                break
            if line.startswith("!Sample_characteristics"):
                characteristics.append(_cells(line)[1:])
            elif line.startswith("!Sample_"):
                cells = _cells(line)
                sample_fields.setdefault(cells[0][len("!Sample_"):], cells[1:])
        else:
            raise DataFormatError(f"{path}: no {BEGIN} line (truncated file)")
        table_lines = []
        for line in stream:
            if line.startswith(END):
                break
            table_lines.append(line)
        else:
            raise DataFormatError(f"{path}: no {END} line (truncated table)")
    if "geo_accession" not in sample_fields:
        raise DataFormatError(f"{path}: missing field '!Sample_geo_accession'")
    samples = sample_fields["geo_accession"]
    require_unique(samples, "ids in field '!Sample_geo_accession'", path)
    for name, cells in [*sample_fields.items(), *(("characteristics", c) for c in characteristics)]:
        if len(cells) != len(samples):
            raise DataFormatError(f"{path}: field '!Sample_{name}' has {len(cells)} cells for "
                                  f"{len(samples)} samples")
    obs = parse_characteristics(characteristics, samples, path)
    for name, cells in sample_fields.items():
        if name != "geo_accession" and name not in obs:
            obs[name] = cells
    ids, matrix = _table(table_lines, samples, path, value_range)
    adata = ad.AnnData(X=matrix.T.copy(), obs=obs, var=pd.DataFrame(index=pd.Index(ids)))
    adata.uns["missing_values"] = int(np.isnan(matrix).sum())
    return adata


def _table(lines: list[str], samples: list[str], path, value_range):
    if not lines:
        raise DataFormatError(f"{path}: empty data table")
    header = _cells(lines[0])
    if header[0] != "ID_REF" or header[1:] != samples:
        raise DataFormatError(f"{path}: table header (field 'ID_REF' then samples) does not "
                              "list the samples of '!Sample_geo_accession' in order")
    rows = ((number, _cells(line)) for number, line in enumerate(lines[1:], start=2))
    return numeric_rows(rows, len(samples), path, "ids in field 'ID_REF'", unit="table row",
                        value_range=value_range)


def load_series_matrix(key: str, value_range: tuple[float, float] | None = (0.0, 1.0)
                       ) -> ad.AnnData:
    """A registered real series matrix (fetched by hash), beta values checked by default."""
    registry = load_registry()
    adata = read_series_matrix(fetch(key, registry), value_range)
    adata.uns["provenance"] = registry[key].provenance
    return adata
