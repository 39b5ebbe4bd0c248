"""Tested helpers behind the executable book on the Precious1GPT and HallmarkAge aging clocks.

Subpackages, from the bottom up (a module imports only from its own level or the ones above it
in this list):

- ``helpers.data``: the registry of real files, the download cache and the readers;
- ``helpers.common``: metrics, splits, published clocks and expression processing;
- ``helpers.precious1gpt`` and ``helpers.hallmarkage``: each paper's pipeline, one module per
  stage;
- ``helpers.book``: the chapter runner, results recorder and appendix (never imported by the
  science).
"""

__version__ = "0.2.0"

import warnings

# Chapters are rendered as static HTML, where tqdm's text bars are what should show: silence
# tqdm.auto's advice to install ipywidgets (it is imported by anndata, before any chapter code).
warnings.filterwarnings("ignore", message="IProgress not found")
