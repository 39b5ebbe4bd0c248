"""GTEx v8: the gene TPM file (GCT 1.2), sample attributes and subject phenotypes (Precious1GPT's
12,453 training transcriptomes). Open-access ages are decade brackets: the bracket is kept and
its midpoint given as a float. Tested on small files of the real formats.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from helpers.data.formats import MISSING, DataFormatError, open_text, require_unique
from helpers.data.registry import fetch, load_registry


def age_bracket_midpoint(bracket: str) -> float:
    """Midpoint of a GTEx decade bracket: ages are completed years, so ``"60-69"`` spans
    [60, 70) and its midpoint is 65.0 (the expected exact age under a uniform spread)."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(bracket))
    if not match:
        raise ValueError(f"not an age bracket: {bracket!r}")
    low, high = map(int, match.groups())
    if low % 10 or high != low + 9:
        raise ValueError(f"not a decade bracket such as '60-69': {bracket!r}")
    return (low + high + 1) / 2


def read_gct(path: Path | str, samples: Iterable[str] | None = None,
             require_all: bool = True) -> ad.AnnData:
    """Read a GCT 1.2 expression file (genes x samples) into samples x genes; ``samples`` keeps
    only those columns (the full GTEx file has 17,382), all of which must be in the file unless
    ``require_all`` is False. var holds ``Description`` (symbol)."""
    with open_text(path) as stream:
        version = stream.readline().strip()
        if version != "#1.2":
            raise DataFormatError(f"{path}: first line is {version!r}, not the GCT version #1.2")
        try:
            n_rows, n_cols = map(int, stream.readline().split("\t")[:2])
        except ValueError:
            raise DataFormatError(f"{path}: second line must give the row and column counts"
                                  ) from None
        header = stream.readline().rstrip("\r\n").split("\t")
        if header[:2] != ["Name", "Description"]:
            raise DataFormatError(f"{path}: header must start with fields Name, Description")
        columns = pd.Index(header[2:])
        require_unique(columns, "ids in field 'sample ids (header)'", path)
        if len(columns) != n_cols:
            raise DataFormatError(f"{path}: header has {len(columns)} samples, line 2 "
                                  f"declares {n_cols}")
        keep = list(columns) if samples is None else list(samples)
        absent = [s for s in keep if s not in set(columns)]
        if not require_all:
            keep = [s for s in keep if s not in set(absent)]
        elif absent:
            raise DataFormatError(f"{path}: requested samples not in the header: {absent[:3]}")
        rows = CheckedRows(stream, len(header), path, first_line=4)
        table = pd.read_csv(rows, sep="\t", header=None, names=header, dtype=str,
                            usecols=["Name", "Description", *keep], keep_default_na=False)
    if len(table) != n_rows:
        raise DataFormatError(f"{path}: {len(table)} gene rows, line 2 declares {n_rows} "
                              "(truncated table)")
    genes = pd.Index(table["Name"])
    require_unique(genes, "ids in field 'Name'", path)
    values = table[keep]
    if values.isin(MISSING).any().any():
        raise DataFormatError(f"{path}: missing value in sample field "
                              f"{values.isin(MISSING).any().idxmax()!r}")
    numeric = values.apply(pd.to_numeric, errors="coerce")
    if numeric.isna().any().any():
        raise DataFormatError(f"{path}: non-numeric value in sample field "
                              f"{numeric.isna().any().idxmax()!r}")
    if np.isinf(numeric.to_numpy(float)).any():
        raise DataFormatError(f"{path}: infinite value in sample field "
                              f"{np.isinf(numeric).any().idxmax()!r}")
    if (numeric < 0).any().any():
        raise DataFormatError(f"{path}: negative value in sample field "
                              f"{(numeric < 0).any().idxmax()!r}")
    return ad.AnnData(X=numeric.to_numpy(np.float32).T.copy(),
                      obs=pd.DataFrame(index=pd.Index(keep, name="SAMPID")),
                      var=pd.DataFrame({"Description": table["Description"].to_numpy()},
                                       index=genes.rename("gene_id")))


class CheckedRows(io.TextIOBase):
    """The remaining lines of a tab-separated stream, each checked to hold ``n_fields`` fields
    before pandas parses it (pandas would drop an extra trailing field, or pad a short row)."""

    def __init__(self, stream, n_fields: int, path, first_line: int):
        self._stream, self._n, self._path, self._number = stream, n_fields, path, first_line - 1

    def readable(self):
        return True

    def read(self, size=-1):
        out, length = [], 0
        while size is None or size < 0 or length < size:
            line = self._stream.readline()
            if not line:
                break
            self._number += 1
            fields = line.rstrip("\r\n").count("\t") + 1
            if fields != self._n and line.strip():
                raise DataFormatError(f"{self._path}: line {self._number} "
                                      f"({line.split(chr(9), 1)[0]!r}) has {fields} fields, the "
                                      f"header {self._n}")
            out.append(line)
            length += len(line)
        return "".join(out)


def _read_table(path, required: tuple[str, ...], id_field: str) -> pd.DataFrame:
    with open_text(path) as stream:
        table = pd.read_csv(stream, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataFormatError(f"{path}: missing field(s) {missing}")
    require_unique(table[id_field], f"ids in field {id_field!r}", path)
    return table.set_index(id_field, drop=False)


def read_sample_attributes(path: Path | str) -> pd.DataFrame:
    """GTEx sample attributes: SAMPID, SMTS (tissue) and the rest; subject id derived."""
    table = _read_table(path, ("SAMPID", "SMTS"), "SAMPID")
    empty = table["SMTS"].isin(MISSING)
    if empty.any():
        raise DataFormatError(f"{path}: missing field 'SMTS' for samples "
                              f"{list(table.index[empty][:3])}")
    table["SUBJID"] = table["SAMPID"].str.split("-").str[:2].str.join("-")
    return table


def read_subject_phenotypes(path: Path | str) -> pd.DataFrame:
    """GTEx subject phenotypes: SUBJID, SEX, AGE bracket, plus ``age_midpoint`` (float)."""
    table = _read_table(path, ("SUBJID", "AGE"), "SUBJID")
    midpoints = []
    for subject, bracket in zip(table.index, table["AGE"], strict=True):
        if bracket.strip() in MISSING:
            raise DataFormatError(f"{path}: missing field 'AGE' for subject {subject!r}")
        try:
            midpoints.append(age_bracket_midpoint(bracket))
        except ValueError:
            raise DataFormatError(f"{path}: field 'AGE' of subject {subject!r} is not a decade "
                                  f"bracket: {bracket!r}") from None
    table["age_bracket"] = table["AGE"]
    table["age_midpoint"] = np.asarray(midpoints, dtype=float)
    return table


SEX_CODES = {"1": "male", "2": "female"}  # GTEx's SEX field


def sex_labels(codes: pd.Series, path) -> pd.Series:
    """GTEx SEX codes (1 male, 2 female) as labels; any other code is an error naming the
    subject (it would otherwise become a missing value)."""
    text = codes.astype(str).str.strip()
    unknown = ~text.isin(list(SEX_CODES))
    if unknown.any():
        raise DataFormatError(f"{path}: field 'SEX' of subject {codes.index[unknown][0]!r} is "
                              f"{codes[unknown].iloc[0]!r}, not 1 (male) or 2 (female)")
    return text.map(SEX_CODES)


def sample_table(attributes: pd.DataFrame, phenotypes: pd.DataFrame, path) -> pd.DataFrame:
    """One row per sample: tissue, subject and its age bracket / midpoint; every subject known."""
    unknown = ~attributes["SUBJID"].isin(phenotypes.index)
    if unknown.any():
        raise DataFormatError(f"{path}: no subject phenotypes for samples "
                              f"{list(attributes.index[unknown][:3])}")
    subject = phenotypes.loc[attributes["SUBJID"]]
    out = pd.DataFrame({"tissue": attributes["SMTS"].to_numpy(),
                        "subject": attributes["SUBJID"].to_numpy(),
                        "age_bracket": subject["age_bracket"].to_numpy(),
                        "age_midpoint": subject["age_midpoint"].to_numpy()},
                       index=attributes.index)
    for field in ("SMTSD", "SMGEBTCH", "SMAFRZE"):
        if field in attributes:
            out[field] = attributes[field].to_numpy()
    if "SEX" in subject:
        out["sex"] = sex_labels(subject["SEX"], path).to_numpy()
    return out


def read_gtex(tpm_path, attributes_path, phenotypes_path,
              tissues: Iterable[str] | None = None) -> ad.AnnData:
    """GTEx TPM with per-sample tissue and age (optionally only some tissues), samples x genes."""
    samples = sample_table(read_sample_attributes(attributes_path),
                           read_subject_phenotypes(phenotypes_path), phenotypes_path)
    if tissues is not None:
        samples = samples[samples["tissue"].isin(list(tissues))]
    adata = read_gct(tpm_path, samples=list(samples.index), require_all=False)
    adata.obs = samples.loc[adata.obs_names]
    adata.uns["modality"] = "expression"
    return adata


def load_gtex_v8(tissues: Iterable[str] | None = None) -> ad.AnnData:
    """The real GTEx v8 TPM, sample attributes and phenotypes (each fetched by hash)."""
    registry = load_registry()
    keys = ("gtex_v8_gene_tpm", "gtex_v8_sample_attributes", "gtex_v8_subject_phenotypes")
    adata = read_gtex(*(fetch(k, registry) for k in keys), tissues=tissues)
    adata.uns["provenance"] = {k: registry[k].provenance for k in keys}
    return adata
