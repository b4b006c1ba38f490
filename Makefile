# The two entry points of the README. Each creates .venv/ at the repo root from the pinned pyproject.toml
# (idempotent: a stamp file skips the install when pyproject.toml has not changed).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: lab test tour bench clean browser-deps notebooks

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Main job: JupyterLab on the guided notebooks (127.0.0.1, a fresh token in the printed URL, no browser opened).
# Pass options through ARGS, e.g. `make lab ARGS="--port 8890"`.
lab: $(STAMP)
	$(VENV)/bin/msexplore lab $(ARGS)

# Each notebooks/NN_name.ipynb is paired with its py:percent source NN_name.py (jupytext). After an edit of either
# side outside JupyterLab: sync the pair (the newer file wins), clear the outputs (the .ipynb files are committed
# without them), then touch the .py files so that the text stays the newer side, as jupytext expects.
notebooks: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/*.py
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/*.ipynb
	touch notebooks/*.py

tour: $(STAMP)
	$(VENV)/bin/python examples/tour.py

test: $(STAMP) browser-deps
	$(VENV)/bin/python -m pytest -q

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`: no browser download).
# Installed with apt-get only when /usr/bin/chromium is missing (CI runs as root; elsewhere through sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
		if command -v apt-get >/dev/null 2>&1; then \
			echo "installing Chromium for the browser tests (apt-get install chromium)"; \
			$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "warning: $(CHROMIUM) is missing and apt-get is not available: tests/browser will be skipped"; \
		fi; \
	fi

# The benchmarks compare with PyTorch, which lives in its own environment (.venv-bench: msexplore + the [bench]
# extra): tvm_ffi imports torch whenever it is installed, adding ~3 s and ~200 MB to every TVM process, builder
# and runner workers included. The search and sampling suites run in the torch-free .venv, as users run them.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(VENV)/bin/python -m benchmarks sampling search
	$(BENCH_VENV)/bin/python -m benchmarks kernels int8

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info .pytest_cache
