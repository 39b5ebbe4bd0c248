# The book's two commands (see README.md):
#   make book   install if needed, execute every chapter (default profile), render the HTML book
#   make test   install if needed, lint, unit tests, every chapter in the quick profile, strict build
# Both create .venv on first use and reuse it afterwards.

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= default
# make publish-check: where the site is built (the workflow uploads $(PUBLISH_DIR)/_build/html)
PUBLISH_DIR ?= _publish
# toc parts executed side by side (helpers.book.run --jobs); the machines have 2 cores
JOBS    ?= 2
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip install --disable-pip-version-check -q --no-compile
STAMP   := $(VENV)/.installed

# Keep jupyter, ipython, matplotlib and numba state out of $HOME.
STATE := $(CURDIR)/.cache
export MPLCONFIGDIR       := $(STATE)/matplotlib
export IPYTHONDIR         := $(STATE)/ipython
export JUPYTER_CONFIG_DIR := $(STATE)/jupyter/config
export JUPYTER_RUNTIME_DIR:= $(STATE)/jupyter/runtime
export NUMBA_CACHE_DIR    := $(STATE)/numba
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# Offline copy of the real data: ../shared/data when it is there, unless already set.
SHARED_DATA := $(abspath ../shared/data)
export AGING_BOOK_DATA_MIRROR ?= $(if $(wildcard $(SHARED_DATA)/REGISTRY.md),$(SHARED_DATA))

.PHONY: book test install chapters html unit lint clean publish-check browser-check pdf

book: $(STAMP) | $(STATE)/.dirs
	$(PY) -m helpers.book.run --profile $(PROFILE) --jobs $(JOBS)
	$(MAKE) --no-print-directory html

# The quick chapters (two toc parts on the two cores), then the unit tests in two pytest-xdist
# workers beside the strict build of what the chapters executed (the build uses one core);
# each target's output is printed whole when it ends; the browser check follows the build.
# The unit tests beside the chapters made
# three processes share two cores (nice does not help: jupyter starts each kernel in a session
# of its own, and the kernel scheduler shares the CPU between sessions first).
test: $(STAMP) lint | $(STATE)/.dirs
	$(MAKE) --no-print-directory chapters PROFILE=quick
	$(MAKE) --no-print-directory -j2 --output-sync=target unit browser-check UNIT_THREADS=1 UNIT_WORKERS=2

# What .github/workflows/publish.yml runs: the default profile (unchanged chapters are not
# executed again), rendered into $(PUBLISH_DIR), then checked (a page per toc entry, the
# default-profile banner on every page, no local paths, .nojekyll).
publish-check: $(STAMP) | $(STATE)/.dirs
	$(MAKE) --no-print-directory chapters PROFILE=default
	rm -rf $(PUBLISH_DIR)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --path-output $(PUBLISH_DIR)
	touch $(PUBLISH_DIR)/_build/html/.nojekyll
	$(PY) -m helpers.book.publish $(PUBLISH_DIR)/_build/html --profile default

install: $(STAMP)

$(STAMP): requirements/lock.txt requirements/constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements/constraints.txt
	@# the lock pins every package, so pip installs it as listed without resolving (about 15 s
	@# less); pip check then refuses an environment in which a requirement is missing
	$(PIP) --no-deps -r requirements/lock.txt -c requirements/constraints.txt
	$(PY) -m pip check
	$(PIP) --no-deps --no-build-isolation -e .
	@# Bytecode once, here, for what the book imports (helpers/book/warm.py: about 6,000 files,
	@# 49 s beside the umap line, against 72 s for compileall over all 12,560 on both cores);
	@# PYTHONDONTWRITEBYTECODE, set on some machines, is lifted for these two processes only,
	@# so that every later kernel reads the bytecode. Beside it, numba compiles umap's and
	@# pynndescent's kernels into NUMBA_CACHE_DIR (about 30 s on the first 'import umap',
	@# which the first chapter with a UMAP would otherwise pay).
	env -u PYTHONDONTWRITEBYTECODE $(PY) -c 'import umap' > /dev/null 2>&1 & \
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m helpers.book.warm; \
	wait
	@touch $(STAMP)

$(STATE)/.dirs:
	@mkdir -p $(MPLCONFIGDIR) $(IPYTHONDIR) $(JUPYTER_CONFIG_DIR) $(JUPYTER_RUNTIME_DIR) $(NUMBA_CACHE_DIR)
	@touch $@

chapters: $(STAMP) | $(STATE)/.dirs
	$(PY) -m helpers.book.run --profile $(PROFILE) --jobs $(JOBS)

html: $(STAMP) | $(STATE)/.dirs
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# Every rendered page opened in headless Chromium (installed with apt-get when missing): fails
# on a table or figure overflowing the text column, a JavaScript error or a raw cross-reference,
# with a screenshot of each failure in _build/browser-check (helpers/book/browser.py).
browser-check: html
	$(PY) -m helpers.book.browser _build/html

# The whole rendered book as one PDF, offline (_build/book.pdf): every toc page on one print
# page, printed by the same headless Chromium (helpers/book/pdf.py).
pdf: html
	$(PY) -m helpers.book.pdf _build/html

# UNIT_WORKERS: pytest-xdist worker processes; UNIT_THREADS: compute threads of each (make
# test gives each one: more threads than cores made torch's tests several times slower).
# --dist loadfile keeps a test file on one worker, so a module fixture is built once (a whole
# run: 97 -> 87 s side by side).
unit: $(STAMP) | $(STATE)/.dirs
	$(if $(UNIT_THREADS),OMP_NUM_THREADS=$(UNIT_THREADS) MKL_NUM_THREADS=$(UNIT_THREADS) OPENBLAS_NUM_THREADS=$(UNIT_THREADS) NUMBA_NUM_THREADS=$(UNIT_THREADS)) $(PY) -m pytest $(if $(UNIT_WORKERS),-n $(UNIT_WORKERS) --dist loadfile)

lint: $(STAMP)
	$(PY) -m ruff check helpers tests benchmarks

clean:
	rm -rf _build _publish chapters lightning_logs .pt_tmp
