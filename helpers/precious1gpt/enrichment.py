"""Over-representation analysis of ranked gene lists (paper: Methods, "Pathway enrichment
analysis"; Table 2) with ``gseapy.enrich``, offline, against gene-set libraries built from the
registry's real files: Reactome pathways (GMT) and Open Genes hallmark-of-aging mechanisms.

gseapy's test is Enrichr's: a one-sided hypergeometric p-value, Enrichr's odds ratio and
combined score (-log p x odds ratio), and Benjamini-Hochberg adjusted p-values. With a
background list, query genes and gene sets are first restricted to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from helpers.data import loaders

COLUMNS = ["term", "pathway", "overlap", "hits", "set_size", "p_value", "adjusted_p",
           "odds_ratio", "combined_score", "genes", "rank"]


def reactome_library() -> tuple[dict[str, list[str]], pd.Series]:
    """Reactome pathways keyed by R-HSA id (gene lists), and id -> pathway name."""
    reactome = loaders.load_reactome_pathways()
    library = {row.reactome_id: list(row.genes) for row in reactome.itertuples()}
    return library, reactome.set_index("reactome_id")["pathway"]


def hallmark_library(min_genes: int = 5) -> dict[str, list[str]]:
    """Open Genes aging mechanisms (hallmarks) as gene sets: mechanism -> its genes."""
    table = loaders.load_opengenes_hallmarks().explode("terms").dropna(subset=["terms"])
    table = table[table["terms"].str.strip() != ""]
    sets = table.groupby("terms")["gene"].apply(lambda g: sorted(set(g)))
    return {term: genes for term, genes in sets.items() if len(genes) >= min_genes}


def library_genes(library: dict[str, list[str]]) -> list[str]:
    """Every gene of a library (gseapy's background when none is given)."""
    return sorted({g for genes in library.values() for g in genes})


def enrich(genes: list[str], library: dict[str, list[str]], background: list[str] | None = None,
           names: pd.Series | None = None) -> pd.DataFrame:
    """``gseapy.enrich`` of ``genes`` against ``library`` (offline), every term kept: term,
    pathway name, overlap, p-value, adjusted p-value, odds ratio, combined score, overlapping
    genes, ranked by p-value (ties by combined score)."""
    import gseapy

    if not genes:
        raise ValueError("the gene list is empty")
    result = gseapy.enrich(gene_list=list(genes), gene_sets=library, background=background,
                           outdir=None, cutoff=1.0, no_plot=True, verbose=False).results
    if result is None or result.empty:
        return pd.DataFrame(columns=COLUMNS)
    overlap = result["Overlap"].str.split("/", expand=True).astype(int)
    out = pd.DataFrame({
        "term": result["Term"], "overlap": result["Overlap"], "hits": overlap[0],
        "set_size": overlap[1], "p_value": result["P-value"],
        "adjusted_p": result["Adjusted P-value"], "odds_ratio": result["Odds Ratio"],
        "combined_score": result["Combined Score"], "genes": result["Genes"]})
    out.insert(1, "pathway", out["term"].map(names) if names is not None else out["term"])
    out = out.sort_values(["p_value", "combined_score"], ascending=[True, False])
    out["rank"] = range(1, len(out) + 1)
    return out.reset_index(drop=True)[COLUMNS]


def overlap_tests(genes: list[str], library: dict[str, list[str]], background: list[str]
                  ) -> pd.DataFrame:
    """Every set of ``library`` tested for over-representation in ``genes`` (gseapy's one-sided
    hypergeometric test, :func:`enrich`) against ``background``: set sizes counted inside the
    background, the expected overlap beside the observed one, and a set the list misses kept
    with 0 hits and p = 1 (gseapy drops it)."""
    inside = set(background)
    tested = enrich(genes, library, background)
    rows = []
    for term, members in library.items():
        size = len(inside & set(members))
        hit = tested[tested["term"] == term]
        rows.append({"set": term, "set_size": size, "hits": int(hit["hits"].iloc[0]) if len(
            hit) else 0, "expected": size * len(set(genes) & inside) / len(inside),
            "odds_ratio": float(hit["odds_ratio"].iloc[0]) if len(hit) else 0.0,
            "p_value": float(hit["p_value"].iloc[0]) if len(hit) else 1.0,
            "genes": hit["genes"].iloc[0] if len(hit) else ""})
    out = pd.DataFrame(rows)
    out["adjusted_p"] = stats.false_discovery_control(out["p_value"].to_numpy())
    return out


def significant(result: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The paper's Table 2 rule: nominal p < ``alpha`` (adjusted p shown beside it)."""
    return result[result["p_value"] < alpha]


def term_ranks(result: pd.DataFrame, terms: pd.Series) -> pd.DataFrame:
    """The rank, p-value and adjusted p of each wanted term (index: term id; ``terms`` maps id
    -> name); a term with no overlap has no rank."""
    ranked = result.set_index("term")
    out = pd.DataFrame({"pathway": terms})
    for column in ("rank", "overlap", "p_value", "adjusted_p", "combined_score"):
        out[column] = ranked[column].reindex(out.index)
    out.index.name = "term"
    return out


def compare_with_published(result: pd.DataFrame, published: pd.DataFrame,
                           alpha: float = 0.05) -> pd.DataFrame:
    """The paper's Table 2 beside our result: for each published pathway, its p-value, odds
    ratio and combined score in the paper and here, our rank, and whether it passes p < alpha
    here."""
    ours = result.set_index("term")
    out = published.set_index("reactome_id")[["pathway", "p_value", "odds_ratio",
                                               "combined_score"]].add_prefix("paper_")
    out = out.rename(columns={"paper_pathway": "pathway"})
    out["rank"] = ours["rank"].reindex(out.index)
    out["overlap"] = ours["overlap"].reindex(out.index)
    out["p_value"] = ours["p_value"].reindex(out.index)
    out["adjusted_p"] = ours["adjusted_p"].reindex(out.index)
    out["in_our_list"] = out["p_value"] < alpha
    return out


def sensitivity(ranking: pd.Index, library: dict[str, list[str]], watch: pd.Series,
                cutoffs: tuple[int, ...], backgrounds: dict[str, list[str] | None],
                names: pd.Series | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """How the result moves with the list length (top-k) and the background: per setting, the
    number of terms with p < alpha and with adjusted p < alpha, how many watched terms
    (``watch``: id -> name) rank in the top 10, and the rank of each."""
    rows = []
    for label, background in backgrounds.items():
        for k in cutoffs:
            result = enrich(list(ranking[:k]), library, background, names)
            ranks = term_ranks(result, watch)["rank"]
            rows.append({"background": label, "top_k": k,
                         "terms_p<0.05": int((result["p_value"] < alpha).sum()),
                         "terms_adjusted_p<0.05": int((result["adjusted_p"] < alpha).sum()),
                         "watched_in_top_10": int((ranks <= 10).sum()),
                         **{f"rank {t}": r for t, r in ranks.items()}})
    return pd.DataFrame(rows)


def named_gene_ranks(ranking: pd.DataFrame, groups: dict[str, list[str]],
                     model_genes: list[str]) -> pd.DataFrame:
    """Where named genes (grouped, e.g. by pathway) sit in a ranking: one row per gene with
    its group, whether the model has it, and its rank (NaN when the model lacks it)."""
    position = pd.Series(range(1, len(ranking) + 1), index=ranking.index)
    known = set(model_genes)
    rows = [{"pathway": group, "gene": gene, "model gene": gene in known,
             "rank": position.get(gene, np.nan) if gene in known else np.nan}
            for group, genes in groups.items() for gene in genes]
    return pd.DataFrame(rows)
