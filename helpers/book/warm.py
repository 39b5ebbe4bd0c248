"""Byte-compile what the book runs, once, at install: import every ``helpers`` module and the
libraries the chapters, the tests and the build load, so that Python writes their bytecode.

Run with ``PYTHONDONTWRITEBYTECODE`` unset (``make install`` does): the chapters' kernels then
read the bytecode instead of compiling the same sources in every kernel. Importing what is
used compiles about 6,000 files in one process; ``compileall`` over the whole environment
compiled 12,560 on two cores and took longer (measured on a fresh clone, 2026-12-02).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

LIBRARIES = (
    # the science
    "pytorch_tabular", "pytorch_tabular.models", "scanpy", "anndata", "optuna",
    "optuna.visualization.matplotlib", "gseapy", "shap", "qnorm", "statsmodels.api",
    "sklearn.linear_model", "sklearn.ensemble", "sklearn.model_selection",
    "sklearn.decomposition", "sklearn.metrics", "matplotlib.pyplot", "PIL.Image",
    # chapters: the runner and the kernels
    "papermill", "nbformat", "nbclient", "jupytext", "ipykernel.kernelapp", "ipykernel.ipkernel",
    "debugpy", "IPython", "matplotlib_inline.backend_inline", "tornado.ioloop",
    "pygments.lexers.python", "narwhals", "mako.template",
    # Optuna's SQLite studies (SQLAlchemy, alembic)
    "sqlalchemy.orm", "alembic.migration", "alembic.runtime.environment",
    # the tests and the build
    "pytest", "xdist", "myst_nb", "jupyter_book", "sphinx.application", "sphinx_book_theme",
    "sphinxcontrib.bibtex",
)


def main() -> int:
    """Import everything listed (and every helpers module); report what could not be."""
    import helpers

    failed = []
    names = [m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.")]
    for name in (*names, *LIBRARIES):
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - a warm-up never stops the install
            failed.append(f"{name} ({type(error).__name__}: {error})")
    try:  # an SQLite study's storage pulls in the migration code
        import optuna

        optuna.storages.RDBStorage("sqlite:///:memory:")
    except Exception as error:  # noqa: BLE001
        failed.append(f"optuna RDB storage ({error})")
    for line in failed:
        print(f"warm-up: not imported: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
