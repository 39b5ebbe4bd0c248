"""Tested helpers behind the executable book on the Precious1GPT and HallmarkAge aging clocks.

One module per pipeline stage: ``registry`` (hashed real files), ``loaders`` (parsing them),
``rdata_xdr`` (fast .rda reading), ``cache`` (parameter-keyed intermediates), ``clocks``
(published linear clocks), ``metrics``,
``provenance`` (tables about the data), ``run`` (the chapter runner).
"""

__version__ = "0.1.0"

import warnings

# Chapters are rendered as static HTML, where tqdm's text bars are what should show: silence
# tqdm.auto's advice to install ipywidgets (it is imported by anndata, before any chapter code).
warnings.filterwarnings("ignore", message="IProgress not found")
