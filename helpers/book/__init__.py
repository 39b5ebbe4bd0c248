"""The book's own machinery: the chapter runner (papermill, profiles), the results recorder,
the appendix builders, provenance tables and the tuning worker's command line. It may use every
science module; no science module imports it (``tests/test_layout.py`` checks)."""
