"""Loaders of the registry's real files into plain pandas / AnnData objects with provenance.

Each loader goes through :func:`helpers.data.registry.fetch` (hash verified) before parsing, checks
the fields it relies on (errors name the file and the field), and records the file's source,
licence and hash in ``attrs`` (pandas) or ``uns["provenance"]`` (AnnData).
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from helpers.data import formats, rfiles
from helpers.data.cache import cached_frame
from helpers.data.formats import DataFormatError, check_beta_values
from helpers.data.gtex import age_bracket_midpoint, sex_labels
from helpers.data.registry import RegistryEntry, fetch, load_registry, verified_bytes


def _entry_and_path(key: str) -> tuple[RegistryEntry, Path]:
    registry = load_registry()
    return registry[key], fetch(key, registry)


def _tag(frame: pd.DataFrame, entry: RegistryEntry) -> pd.DataFrame:
    frame.attrs.update(entry.provenance)
    return frame


def _read_rda_frame(path: Path, name: str) -> pd.DataFrame:
    """One R data.frame (or S4 DataFrame) from an .rda file (:func:`rfiles.read_r`)."""
    frame = rfiles.read_r(path, name)
    if not isinstance(frame, pd.DataFrame):
        raise DataFormatError(f"{path}: R object {name!r} is a {type(frame).__name__}, not a "
                              "data frame")
    return frame


def _require_columns(frame: pd.DataFrame, columns, path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing field(s) {missing}")


def load_gse30870() -> ad.AnnData:
    """The 16 real GSE30870 blood methylomes: X = 450k beta values, obs['age'] in years."""
    entry, frame = _verified_pickle("gse30870_methylation")
    path = entry.path
    _require_columns(frame, ["age"], path)
    if frame.index.has_duplicates:
        raise DataFormatError(f"{path}: duplicated sample ids in the index")
    betas = frame.drop(columns="age")
    check_beta_values(betas, path)
    obs = pd.DataFrame({"age": frame["age"].astype(float)}, index=frame.index.astype(str))
    adata = ad.AnnData(X=betas.to_numpy(dtype=np.float32), obs=obs,
                       var=pd.DataFrame(index=betas.columns.astype(str)))
    adata.uns["provenance"] = entry.provenance
    adata.uns["modality"] = "methylation"
    return adata


def load_gtex_muscle() -> ad.AnnData:
    """The 50 real GTEx v8 muscle samples: X = read counts, obs = sex and age bracket."""
    counts_entry, counts_path = _entry_and_path("gtex_muscle_counts")
    traits_entry, traits_path = _entry_and_path("gtex_muscle_traits")
    counts = _read_rda_frame(counts_path, "gtex_expr")
    traits = _read_rda_frame(traits_path, "gtex_traits")
    _require_columns(traits, ["SUBJID", "SEX", "AGE"], traits_path)
    if list(traits["SUBJID"]) != list(counts.index):
        raise DataFormatError(f"{traits_path}: field SUBJID does not list the samples of "
                              f"{counts_path} in the same order")
    obs = pd.DataFrame({
        "sex": sex_labels(traits["SEX"].set_axis(traits["SUBJID"]), traits_path).to_numpy(),
        "age_bracket": traits["AGE"].to_numpy(),
        "age_midpoint": traits["AGE"].map(age_bracket_midpoint).to_numpy(),
        "hardy_scale": traits["DTHHRDY"].to_numpy() if "DTHHRDY" in traits else np.nan,
    }, index=counts.index.astype(str))
    adata = ad.AnnData(X=counts.to_numpy(dtype=np.float32), obs=obs,
                       var=pd.DataFrame(index=counts.columns.astype(str).rename("gene_id")))
    adata.uns["provenance"] = {"counts": counts_entry.provenance,
                               "traits": traits_entry.provenance}
    adata.uns["modality"] = "expression"
    return adata


def _load_probe_annotation(key: str, object_name: str) -> pd.DataFrame:
    entry, path = _entry_and_path(key)
    frame = cached_frame(f"rda-{key}", {"sha256": entry.sha256, "reader": "xdr-1"},
                         lambda: _read_rda_frame(path, object_name).rename_axis("probe"))
    return _tag(frame, entry)


def load_hm450_locations() -> pd.DataFrame:
    """hg19 chr, position and strand of the 485,512 real 450k probes (index: probe id)."""
    frame = _load_probe_annotation("hm450_locations", "Locations")
    _require_columns(frame, ["chr", "pos", "strand"], Path(frame.attrs["source"]))
    return frame


def load_hm450_islands() -> pd.DataFrame:
    """CpG-island relation of each real 450k probe (index: probe id)."""
    frame = _load_probe_annotation("hm450_islands", "Islands.UCSC")
    _require_columns(frame, ["Relation_to_Island"], Path(frame.attrs["source"]))
    return frame


def load_refseq_tss() -> pd.DataFrame:
    """RefSeq protein-coding transcription start sites, hg19 (BED: chr, start, end, gene...)."""
    entry, path = _entry_and_path("refseq_tss_hg19")
    frame = pd.read_csv(path, sep="\t", header=None,
                        names=["chr", "start", "end", "gene", "score", "strand"])
    if not frame["strand"].isin(["+", "-"]).all():
        raise DataFormatError(f"{path}: field strand holds values other than + and -")
    return _tag(frame, entry)


def load_gencode_v26() -> pd.DataFrame:
    """The GTEx v8 GENCODE v26 gene table (index: versioned Ensembl id)."""
    entry, path = _entry_and_path("gencode_v26_genes")
    frame = _read_rda_frame(path, "gencodeGeneInfoV26")
    _require_columns(frame, ["geneSymbol", "gencodeId", "geneType"], path)
    return _tag(frame.set_index("gencodeId"), entry)


def load_reactome_pathways() -> pd.DataFrame:
    """Real Reactome pathways from the GMT: name, R-HSA id and member gene symbols."""
    entry, path = _entry_and_path("reactome_pathways")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 3 or not fields[1].startswith("R-HSA-"):
            raise DataFormatError(f"{path}: line {number} lacks the fields name, R-HSA id, genes")
        genes = tuple(g for g in fields[2:] if g)
        rows.append({"pathway": fields[0], "reactome_id": fields[1], "n_genes": len(genes),
                     "genes": genes})
    return _tag(pd.DataFrame(rows), entry)


def _split_quoted_list(text) -> tuple[str, ...]:
    """Open Genes cells hold quoted comma-separated names: ``'a','b, c'`` -> ('a', 'b, c')."""
    if not isinstance(text, str) or not text.strip():
        return ()
    return tuple(re.findall(r"'([^']*)'", text))


def _load_opengenes(key: str, column: str) -> pd.DataFrame:
    entry, path = _entry_and_path(key)
    frame = pd.read_csv(path)
    _require_columns(frame, ["HGNC", column], path)
    if frame["HGNC"].duplicated().any():
        raise DataFormatError(f"{path}: field HGNC has duplicated symbols")
    out = pd.DataFrame({"gene": frame["HGNC"],
                        "terms": frame[column].map(_split_quoted_list)})
    return _tag(out, entry)


def load_opengenes_hallmarks() -> pd.DataFrame:
    """Open Genes: gene symbol -> tuple of aging mechanisms (hallmarks)."""
    return _load_opengenes("opengenes_hallmarks", "Hallmarks of aging")


def load_opengenes_diseases() -> pd.DataFrame:
    """Open Genes: gene symbol -> tuple of associated diseases."""
    return _load_opengenes("opengenes_diseases", "diseases")


def load_pbmc68k_reduced() -> ad.AnnData:
    """The real 700 PBMCs of scanpy's bundled pbmc68k_reduced (hash verified): X = the
    log-normalised expression (the file's raw), obs = annotated cell types (bulk_labels)."""
    entry, path = _entry_and_path("pbmc68k_reduced")
    with warnings.catch_warnings():  # the file predates anndata's obsp: a FutureWarning
        warnings.simplefilter("ignore", FutureWarning)
        data = ad.read_h5ad(path)
    if data.raw is None or "bulk_labels" not in data.obs:
        raise DataFormatError(f"{path}: lacks the raw expression or field bulk_labels")
    adata = ad.AnnData(X=data.raw.X.copy(), obs=data.obs[["bulk_labels"]].rename(
        columns={"bulk_labels": "cell_type"}), var=pd.DataFrame(index=data.raw.var_names))
    adata.uns["provenance"] = entry.provenance
    return adata


def _verified_pickle(key: str) -> tuple[RegistryEntry, pd.DataFrame]:
    """A registered pandas pickle, unpickled from the very bytes whose sha256 was checked."""
    entry = load_registry()[key]
    data = verified_bytes(key)
    frame = pd.read_pickle(io.BytesIO(data))
    if not isinstance(frame, pd.DataFrame):
        raise DataFormatError(f"{entry.path}: expected a pandas DataFrame, got "
                              f"{type(frame).__name__}")
    return entry, frame


def load_gse69852() -> ad.AnnData:
    """The 6 real GSE69852 liver methylomes (3 adults, 3 fetal): X = 450k beta values
    (samples x 485,512 CpGs), obs = GSM id, source, sex, the age as written, the age in years
    (prenatal negative, from weeks of gestation) and the gestational week (NaN for adults)."""
    betas_entry, betas = _verified_pickle("gse69852_betas")
    sheet_entry, sheet = _verified_pickle("gse69852_samples")
    where = sheet_entry.path
    _require_columns(sheet, ["GSM_ID", "Sample_ID", "source", "gender", "age"], Path(where))
    if sheet["Sample_ID"].duplicated().any():
        raise DataFormatError(f"{where}: field Sample_ID has duplicated samples")
    unknown = sorted(set(betas.columns) - set(sheet["Sample_ID"]))
    if unknown:
        raise DataFormatError(f"{betas_entry.path}: samples {unknown} are not in {where}")
    sheet = sheet.set_index("Sample_ID").loc[betas.columns]
    parsed = [formats.parse_age_text(text, f"{where}: sample {gsm}, field age")
              for gsm, text in zip(sheet["GSM_ID"], sheet["age"], strict=True)]
    check_beta_values(betas.T, betas_entry.path)
    obs = pd.DataFrame({
        "gsm": sheet["GSM_ID"].to_numpy(), "source": sheet["source"].to_numpy(),
        "sex": sheet["gender"].str.lower().to_numpy(), "age_text": sheet["age"].to_numpy(),
        "age": [a for a, _ in parsed], "gestational_weeks": [w for _, w in parsed],
    }, index=pd.Index(betas.columns.astype(str), name="sample"))
    adata = ad.AnnData(X=betas.T.to_numpy(np.float32), obs=obs,
                       var=pd.DataFrame(index=betas.index.astype(str).rename("cpg")))
    adata.uns["provenance"] = {"betas": betas_entry.provenance,
                               "samples": sheet_entry.provenance}
    adata.uns["modality"] = "methylation"
    return adata


AGE_ROW = "Age"


def read_age_row_tsv(source, where: str, value_range=(0.0, 1.0)) -> ad.AnnData:
    """A features-by-samples TSV whose last row is ``Age`` (the EpigeneticPacemaker layout of
    GSE74193: a header of sample ids, one row per CpG, then ages in years, prenatal ones
    negative) as AnnData (samples x features, obs ``age``). ``source``: a path, text stream or
    lines. Refuses, naming the file and the field: an empty file, a duplicated sample or
    feature id, a row with too many values, a missing or non-numeric value, a value outside
    ``value_range``, and a missing, non-numeric or implausible age (outside -1 to 120 y)."""
    if isinstance(source, list):
        source = io.StringIO("".join(source))
    header = source.readline()
    if not header.strip():
        raise DataFormatError(f"{where}: empty file (no header of sample ids)")
    samples = header.rstrip("\r\n").split("\t")[1:]
    if not samples or "" in samples:
        raise DataFormatError(f"{where}: the header names no samples or has an empty id")
    formats.require_unique(samples, "sample ids in the header", where)
    text = source.read()
    try:  # the fast path: every cell a number (the C parser); else the checks below name it
        numbers = pd.read_csv(io.StringIO(text), sep="\t", header=None,
                              names=["id", *samples], index_col=0,
                              dtype={sample: np.float64 for sample in samples})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        numbers = None
    if (numbers is not None and len(numbers) and numbers.index[-1] == AGE_ROW
            and not numbers.isna().any().any()):
        return _age_row_adata(numbers, where, value_range)
    try:
        table = pd.read_csv(io.StringIO(text), sep="\t", header=None, names=["id", *samples],
                            index_col=0, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        table = pd.DataFrame(columns=samples, dtype=str)
    except pd.errors.ParserError as error:
        raise DataFormatError(f"{where}: a row has more values than the header has samples "
                              f"({error})") from error
    if table.empty or table.index[-1] != AGE_ROW:
        last = table.index[-1] if len(table) else None
        raise DataFormatError(f"{where}: the last row is {last!r}, not the {AGE_ROW!r} row "
                              "(truncated file or no ages)")
    age_cells, body = table.iloc[-1], table.iloc[:-1]
    age = pd.to_numeric(age_cells.replace("", np.nan), errors="coerce")  # checked below
    empty = (body == "") | body.isin(sorted(formats.MISSING - {""})) | body.isna()
    if empty.any().any():
        row = body.index[int(np.argmax(empty.any(axis=1).to_numpy()))]
        raise DataFormatError(f"{where}: missing value in field {row!r} (a short row or an "
                              "empty cell)")
    values = body.apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        row = values.index[int(np.argmax(values.isna().any(axis=1).to_numpy()))]
        cell = body.loc[row][values.loc[row].isna()].iloc[0]
        raise DataFormatError(f"{where}: non-numeric value {cell!r} in field {row!r}")
    return _age_row_adata(pd.concat([values, age.to_frame(AGE_ROW).T]), where, value_range)


def _age_row_adata(numbers: pd.DataFrame, where: str, value_range) -> ad.AnnData:
    """The numeric table of :func:`read_age_row_tsv` (features then the Age row) checked for
    duplicated ids, missing or implausible ages and values outside ``value_range``, as
    AnnData."""
    age, values = numbers.iloc[-1], numbers.iloc[:-1]
    bad = age.index[age.isna() | (age < -1) | (age > 120)]
    if len(bad):
        raise DataFormatError(f"{where}: field {AGE_ROW!r} is missing, non-numeric or outside "
                              f"-1 to 120 years for {len(bad)} sample(s), e.g. "
                              f"{bad[:3].tolist()}")
    formats.require_unique(values.index, "feature ids", where)
    if AGE_ROW in values.index:
        raise DataFormatError(f"{where}: a second {AGE_ROW!r} row before the last line")
    low, high = value_range
    outside = (values < low) | (values > high)
    if outside.any().any():
        row = values.index[int(np.argmax(outside.any(axis=1).to_numpy()))]
        raise DataFormatError(f"{where}: value outside [{low:g}, {high:g}] in field {row!r}")
    age = age.to_numpy(float)
    weeks = np.where(age < 0, formats.TERM_WEEKS + age * formats.WEEKS_PER_YEAR, np.nan)
    obs = pd.DataFrame({"age": age, "prenatal": age < 0, "gestational_weeks": weeks},
                       index=pd.Index(numbers.columns.astype(str), name="sample"))
    return ad.AnnData(X=values.to_numpy(np.float32).T.copy(), obs=obs,
                      var=pd.DataFrame(index=pd.Index(values.index.astype(str), name="cpg")))


def load_gse74193() -> ad.AnnData:
    """The 675 real GSE74193 brain methylomes (dorsolateral prefrontal cortex, 450k betas of
    the 7,503 age-associated CpGs the EpigeneticPacemaker package kept): obs = age in years
    (the 65 prenatal ones negative), prenatal flag, gestational weeks (40 + age x 52.18, the
    book's term convention) and the package's ``split`` (train 472, test 203)."""
    registry = load_registry()
    parts = {}
    for key, split in (("gse74193_train", "train"), ("gse74193_test", "test")):
        data = verified_bytes(key, registry)
        text = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(data)), encoding="utf-8")
        parts[split] = read_age_row_tsv(text, str(registry[key].path))
        parts[split].obs["split"] = split
        parts[split].uns["provenance"] = registry[key].provenance
    train, test = parts["train"], parts["test"]
    where = registry["gse74193_test"].path
    both = train.obs_names.intersection(test.obs_names)
    if len(both):
        raise DataFormatError(f"{where}: samples {both[:3].tolist()} are also in the training "
                              "file")
    if not train.var_names.equals(test.var_names):
        raise DataFormatError(f"{where}: its CpG rows differ from the training file's")
    adata = ad.concat([train, test], merge="same")
    adata.obs["gsm"] = adata.obs_names.astype(str)
    adata.uns["provenance"] = {"train": train.uns["provenance"], "test": test.uns["provenance"]}
    adata.uns["modality"] = "methylation"
    return adata


def gse7621_adata(expression: pd.DataFrame, samples: pd.DataFrame, where: str,
                  where_samples: str) -> ad.AnnData:
    """GSE7621's data frames as AnnData (samples x genes): X = log2 RMA expression of one
    probe set per gene symbol, obs = GSM id, ``disease`` and ``case`` (Parkinson's). Refuses,
    naming the file and the field: a missing column, a repeated gene symbol or GSM id, a sample
    column without a diagnosis (or a diagnosis without its column), a diagnosis other than
    control / Parkinson's, and values that are missing or not on a log scale."""
    _require_columns(expression, ["Gene.Symbol"], Path(where))
    _require_columns(samples, ["GSM", "disease"], Path(where_samples))
    columns = [c for c in expression.columns if str(c).startswith("GSM")]
    gsm = [str(c).split(".")[0] for c in columns]
    formats.require_unique(gsm, "sample columns (GSM ids)", where)
    formats.require_unique(samples["GSM"], "GSM ids in field GSM", where_samples)
    unlabelled = sorted(set(gsm) - set(samples["GSM"]))
    unmeasured = sorted(set(samples["GSM"]) - set(gsm))
    if unlabelled or unmeasured:
        raise DataFormatError(f"{where_samples}: field GSM lacks {unlabelled[:3]} (columns of "
                              f"{where}) or names {unmeasured[:3]}, which have no column there")
    disease = samples.set_index("GSM").loc[gsm, "disease"].astype(str).str.lower()
    unknown = sorted(set(disease) - {"control", "parkinson's"})
    if unknown:
        raise DataFormatError(f"{where_samples}: field disease holds {unknown}; expected "
                              "control or parkinson's")
    symbols = expression["Gene.Symbol"].astype(str)
    formats.require_unique(symbols, "gene symbols in field Gene.Symbol", where)
    values = expression[columns].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        column = values.columns[int(np.argmax(values.isna().any().to_numpy()))]
        raise DataFormatError(f"{where}: missing or non-numeric value in field {column!r}")
    if not formats.looks_logged(values):
        raise DataFormatError(f"{where}: sample columns hold values up to "
                              f"{np.nanmax(values.to_numpy(float)):.3g}; expected log2 RMA")
    obs = pd.DataFrame({"gsm": gsm, "disease": disease.to_numpy(),
                        "case": (disease == "parkinson's").to_numpy()},
                       index=pd.Index(gsm, name="sample"))
    return ad.AnnData(X=values.to_numpy(np.float64).T, obs=obs,
                      var=pd.DataFrame(index=pd.Index(symbols.to_numpy(), name="gene")))


def load_gse7621() -> ad.AnnData:
    """The 25 real GSE7621 substantia nigra arrays (16 Parkinson's disease, 9 controls; no
    ages): log2 RMA expression per gene symbol with each sample's diagnosis."""
    expression_entry, expression_path = _entry_and_path("gse7621_expression")
    samples_entry, samples_path = _entry_and_path("gse7621_samples")
    adata = gse7621_adata(_read_rda_frame(expression_path, "mgp_LesnickParkinsonsExp"),
                          _read_rda_frame(samples_path, "mgp_LesnickParkinsonsMeta"),
                          str(expression_entry.path), str(samples_entry.path))
    adata.uns["provenance"] = {"expression": expression_entry.provenance,
                               "samples": samples_entry.provenance}
    adata.uns["modality"] = "expression"
    adata.uns["platform"] = "Affymetrix HG-U133 Plus 2, log2 RMA"
    return adata


def read_parquet_bytes(data: bytes, where: str) -> pd.DataFrame:
    """A parquet table from verified bytes, read by pyarrow without its thread pool (a pool
    left running by a read from a Python file object can abort the interpreter at exit:
    apache/arrow issues 34314 and 50482)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(pa.BufferReader(data), use_threads=False)
    except (pa.ArrowException, OSError) as error:
        raise DataFormatError(f"{where}: not a readable parquet file ({error})") from error
    return table.to_pandas(use_threads=False)


def _symbols(frame: pd.DataFrame, column: str, where: str) -> list[str]:
    """The distinct, non-empty gene symbols of ``column``, in file order."""
    _require_columns(frame, [column], Path(where))
    values = frame[column].astype("string").str.strip()
    empty = values.isna() | (values == "")
    if empty.any():
        raise DataFormatError(f"{where}: field {column!r} is empty in {int(empty.sum())} row(s)")
    return list(dict.fromkeys(values))


def hagr_gene_sets(genage: pd.DataFrame, cellage: pd.DataFrame, signatures: pd.DataFrame,
                   where: dict[str, str]) -> dict[str, list[str]]:
    """The HAGR ageing gene sets as a library (name -> genes): GenAge human, CellAge split by
    its senescence effect (induces / inhibits; 'Unclear' left out) and the 2009 ageing
    signature split into genes over- and under-expressed with age. ``signatures`` is the
    stored single text column holding the original ';'-separated file."""
    sets = {"GenAge human": _symbols(genage, "symbol", where["genage"])}
    _require_columns(cellage, ["Gene symbol", "Senescence Effect"], Path(where["cellage"]))
    for effect in ("Induces", "Inhibits"):
        chosen = cellage[cellage["Senescence Effect"] == effect]
        sets[f"CellAge: {effect.lower()} senescence"] = _symbols(chosen, "Gene symbol",
                                                                 where["cellage"])
    if signatures.shape[1] != 1:
        raise DataFormatError(f"{where['signatures']}: expected one text column holding the "
                              f"';'-separated file, found {signatures.shape[1]} columns")
    header = str(signatures.columns[0])
    text = "\n".join([header, *signatures.iloc[:, 0].astype(str)])
    table = pd.read_csv(io.StringIO(text), sep=";")
    _require_columns(table, ["gene_symbol", "ovevrexp", "underexp"], Path(where["signatures"]))
    flags = table[["ovevrexp", "underexp"]].apply(pd.to_numeric, errors="coerce")
    if not (flags.isin([0, 1]).all().all() and (flags.sum(axis=1) == 1).all()):
        raise DataFormatError(f"{where['signatures']}: fields ovevrexp / underexp must mark "
                              "each gene as over- or under-expressed with age (one 1, one 0)")
    sets["Ageing signature: up with age"] = _symbols(table[flags["ovevrexp"] == 1],
                                                     "gene_symbol", where["signatures"])
    sets["Ageing signature: down with age"] = _symbols(table[flags["underexp"] == 1],
                                                       "gene_symbol", where["signatures"])
    return sets


HAGR_KEYS = {"genage": "hagr_genage_human", "cellage": "hagr_cellage",
             "signatures": "hagr_ageing_signatures"}


def load_hagr_gene_sets() -> dict[str, list[str]]:
    """The registered HAGR files (GenAge human, CellAge v3, the 2009 ageing signature) as
    five gene sets (:func:`hagr_gene_sets`), each read from its verified bytes."""
    registry = load_registry()
    where = {name: str(registry[key].path) for name, key in HAGR_KEYS.items()}
    frames = {name: read_parquet_bytes(verified_bytes(key), where[name])
              for name, key in HAGR_KEYS.items()}
    return hagr_gene_sets(frames["genage"], frames["cellage"], frames["signatures"], where)


def load_gtex_expression_set(key: str) -> ad.AnnData:
    """A registered GTEx ExpressionSet (the yarn package's skin or bladder file) as AnnData:
    X = read counts (samples x Ensembl genes), obs = donor, tissue, expression batch
    (SMGEBTCH), sex, age bracket and its midpoint, var = the HGNC symbol and biotype. Counts
    are checked to be counts."""
    entry, path = _entry_and_path(key)
    objects = rfiles.read_r(path)
    if len(objects) != 1:
        raise DataFormatError(f"{path}: expected one ExpressionSet, found {list(objects)}")
    adata = next(iter(objects.values()))
    if not isinstance(adata, ad.AnnData):
        raise DataFormatError(f"{path}: expected an ExpressionSet, found "
                              f"{type(adata).__name__}")
    _require_columns(adata.obs, ["SUBJID", "SMTSD", "AGE", "GENDER", "SMGEBTCH"], path)
    _require_columns(adata.var, ["hgnc_symbol", "gene_biotype"], path)
    counts = np.asarray(adata.X, dtype=np.float64)
    formats.require_counts(counts, f"{path}: exprs")
    obs = pd.DataFrame({
        "donor": adata.obs["SUBJID"].astype(str).to_numpy(),
        "tissue": adata.obs["SMTSD"].astype(str).to_numpy(),
        "batch": adata.obs["SMGEBTCH"].astype(str).to_numpy(),
        "sex": adata.obs["GENDER"].map({1: "male", 2: "female"}).to_numpy(),
        "age_bracket": adata.obs["AGE"].astype(str).to_numpy(),
        "age": [age_bracket_midpoint(b) for b in adata.obs["AGE"]],
    }, index=adata.obs_names)
    out = ad.AnnData(X=counts.astype(np.float32), obs=obs,
                     var=adata.var[["hgnc_symbol", "gene_biotype"]].copy())
    out.uns["provenance"] = entry.provenance
    out.uns["modality"] = "expression"
    return out


def read_donor_pseudobulks(source, where: str) -> ad.AnnData:
    """Per-donor pseudobulks from an h5ad (a path or the verified bytes): one row per donor,
    X log1p-normalised expression, obs ``age`` (years) and ``dataset``. Refuses what a clock
    cannot use, naming the file and the field: duplicated donors or genes, a missing or
    non-numeric age, missing values, and counts or unlogged values instead of log1p values."""
    try:
        data = ad.read_h5ad(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as error:  # h5py/anndata raise many kinds on a truncated or foreign file
        raise DataFormatError(f"{where}: not a readable h5ad file ({error})") from error
    _require_columns(data.obs, ["age", "dataset"], Path(where))
    if data.obs_names.has_duplicates:
        repeated = data.obs_names[data.obs_names.duplicated()].unique()[:3].tolist()
        raise DataFormatError(f"{where}: obs names (donors) repeat: {repeated}")
    if data.var_names.has_duplicates:
        repeated = data.var_names[data.var_names.duplicated()].unique()[:3].tolist()
        raise DataFormatError(f"{where}: var names (gene symbols) repeat: {repeated}")
    age = pd.to_numeric(data.obs["age"], errors="coerce")
    bad = data.obs_names[age.isna() | (age < 0) | (age > 120)]
    if len(bad):
        raise DataFormatError(f"{where}: field age is missing, non-numeric or outside 0-120 "
                              f"years for {len(bad)} donor(s), e.g. {bad[:3].tolist()}")
    values = data.X.toarray() if hasattr(data.X, "toarray") else np.asarray(data.X)
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataFormatError(f"{where}: X holds {int((~np.isfinite(values)).sum())} missing "
                              "or infinite values")
    if (values < 0).any():
        raise DataFormatError(f"{where}: X holds negative values (min {values.min():.3g}); "
                              "expected log1p-normalised expression")
    if not formats.looks_logged(values) or np.array_equal(values, np.round(values)):
        raise DataFormatError(f"{where}: X looks like counts or unlogged values (max "
                              f"{values.max():.3g}, integer-valued: "
                              f"{np.array_equal(values, np.round(values))}); expected "
                              "log1p-normalised expression")
    obs = pd.DataFrame({"donor": data.obs_names.astype(str), "age": age.to_numpy(float),
                        "dataset": data.obs["dataset"].astype(str).to_numpy()},
                       index=pd.Index(data.obs_names.astype(str), name="donor_id"))
    return ad.AnnData(X=values, obs=obs, var=pd.DataFrame(index=data.var_names.astype(str)))


def load_cd4t_pseudobulk() -> ad.AnnData:
    """The 755 real CD4 T-cell donor pseudobulks (AIDA, a lupus cohort, Zhang) of the
    grnimmuneclock package: X = log1p-normalised expression of its 2,025 genes, obs = donor,
    exact age and dataset (:func:`read_donor_pseudobulks`; read from the verified bytes)."""
    entry = load_registry()["cd4t_pseudobulk"]
    adata = read_donor_pseudobulks(verified_bytes("cd4t_pseudobulk"), str(entry.path))
    adata.uns["provenance"] = entry.provenance
    adata.uns["modality"] = "expression"
    return adata


def load_cd4t_aging_stats() -> pd.DataFrame:
    """The package's per-gene age statistics of the same pseudobulks (``pooled_rho``, its
    pooled correlation of each gene with age), indexed by gene: an outside reference."""
    entry = load_registry()["cd4t_aging_stats"]
    table = pd.read_csv(io.BytesIO(verified_bytes("cd4t_aging_stats")))
    _require_columns(table, ["gene", "pooled_rho"], Path(entry.path))
    if table["gene"].duplicated().any():
        raise DataFormatError(f"{entry.path}: field gene repeats "
                              f"{table['gene'][table['gene'].duplicated()].tolist()[:3]}")
    rho = pd.to_numeric(table["pooled_rho"], errors="coerce")
    if rho.isna().any() or (rho.abs() > 1).any():
        raise DataFormatError(f"{entry.path}: field pooled_rho is missing or outside [-1, 1] "
                              f"for {int((rho.isna() | (rho.abs() > 1)).sum())} genes")
    return _tag(table.assign(pooled_rho=rho).set_index("gene"), entry)
