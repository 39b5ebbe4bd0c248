"""Tested helpers behind the executable book on the Precious1GPT and HallmarkAge aging clocks.

One module per pipeline stage: ``registry`` (hashed real files), ``loaders`` (parsing them),
``cache`` (parameter-keyed intermediates), ``clocks`` (published linear clocks), ``metrics``,
``provenance`` (tables about the data), ``run`` (the chapter runner).
"""

__version__ = "0.1.0"
