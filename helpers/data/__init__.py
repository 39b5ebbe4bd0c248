"""The data layer: the registry of real files and their hash-checked download cache, readers of
the real source formats (R data files, GEO series matrices, GTEx GCT and annotations, EWAS Data
Hub matrices, pickles and h5ad files) and loaders that return plain pandas / AnnData objects
with their provenance. Nothing here knows about either paper's methods."""
