# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test install install-test system-deps lint lint-imports benchmarks eval clean bundle bundle-test screenshots

# Stamps record what has been installed, so a second `make` does no work.
$(VENV)/.installed: pyproject.toml scripts/install-python-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	sh scripts/install-python-deps $(PY)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps

system-deps:
	sh scripts/install-system-deps

# The window's X11 libraries: installed when missing and possible, else named (scripts/install-desktop-deps).
run: install
	sh scripts/install-desktop-deps $(PY)
	$(PY) -m ragdesk

lint-imports: install-test
	$(VENV)/bin/lint-imports

# ruff (pyflakes, pycodestyle, bugbear, imports) and mypy (strict on ragdesk/core): pyproject.toml
lint: install-test
	$(VENV)/bin/ruff check ragdesk tests benchmarks scripts setup.py
	$(VENV)/bin/mypy

test: install-test lint-imports lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# The PyInstaller bundle (ragdesk.spec), with its lock file, SBOM and SHA256SUMS written in by
# scripts/bundle_manifest.py: rebuilt when a source file changes; see installer/README.md.
BUNDLE := dist/ragdesk/ragdesk
BUNDLE_SOURCES := ragdesk.spec pyproject.toml scripts/build-bundle scripts/bundle_manifest.py $(shell find ragdesk resources installer/pyinstaller -type f -not -name '*.pyc' 2>/dev/null)

$(VENV)/.installed-bundle: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[bundle]'
	touch $@

$(BUNDLE): $(VENV)/.installed-bundle $(BUNDLE_SOURCES)
	sh scripts/build-bundle $(PY)

bundle: $(BUNDLE)

# Runs the built bundle with no Python involved: --version, doctor, init, index, search, GUI.
bundle-test: $(BUNDLE)
	sh scripts/bundle-smoke-test dist/ragdesk ../shared/corpus

benchmarks: install-test
	@echo "see benchmarks/README.md for each benchmark's command"

# Retrieval quality on the dev sets (issue 16), outside in through the CLI: indexes CISI, CACM and
# ../shared/corpus in throw-away vaults and prints one table (keyword, vector, hybrid, plain RRF;
# nDCG@10, R@100; docqa page hit@1/@5, MRR@10) with the targets met or not. A few minutes.
# EVAL_ARGS passes options, e.g. make eval EVAL_ARGS="--sets cacm --json /tmp/q.json".
eval: install-test
	$(PY) benchmarks/bench_quality.py $(EVAL_ARGS)

# Renders the desktop app's main states offscreen into docs/screenshots/*.png.
screenshots: install-test
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info
