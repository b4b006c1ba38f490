# The two entry points of the README. Each creates .venv/ at the repo root from the pinned pyproject.toml
# (idempotent: a stamp file skips the install when pyproject.toml has not changed).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# PyTorch's own environment (see its rule below). Defined up here: make expands a rule's prerequisites as it reads
# them, so a variable defined further down would be empty in `test: ... $(TORCH_STAMP)`.
TORCH_VENV := .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.installed

.PHONY: lab test tour bench clean browser-deps notebooks

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Main job: JupyterLab on the guided notebooks (127.0.0.1, a fresh token in the printed URL, no browser opened).
# Pass options through ARGS, e.g. `make lab ARGS="--port 8890"`. JupyterLab runs in .venv; notebook 08 (a whole
# model from PyTorch) opens with the kernel "Python 3 (msexplore + PyTorch)": .venv-torch's Python, its kernelspec
# installed into .venv's Jupyter data folder, where `msexplore lab` finds it (JUPYTER_PATH tells the installer so).
lab: $(STAMP) $(TORCH_STAMP)
	JUPYTER_PATH="$(abspath $(VENV))/share/jupyter" $(TORCH_VENV)/bin/python -m ipykernel install \
		--prefix "$(abspath $(VENV))" --name msexplore-torch --display-name "Python 3 (msexplore + PyTorch)"
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

# The whole suite in the torch-free .venv, then the PyTorch import tests in .venv-torch.
test: $(STAMP) $(TORCH_STAMP) browser-deps
	$(VENV)/bin/python -m pytest -q
	$(TORCH_VENV)/bin/python -m pytest -q tests/pytorch_models

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

# PyTorch lives in its own environment (.venv-torch: msexplore + the [test,torch] extras), never in .venv: tvm_ffi
# imports torch whenever it is installed, adding ~3 s and ~200 MB to every TVM process, builder and runner workers
# included. There it serves the tests that import models from PyTorch (tests/pytorch_models) and the benchmarks that
# compare with it; everything else runs torch-free, as most users run it.
$(TORCH_STAMP): pyproject.toml
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet -e ".[test,torch]"
	touch $(TORCH_STAMP)

bench: $(STAMP) $(TORCH_STAMP)
	$(VENV)/bin/python -m benchmarks sampling search
	$(TORCH_VENV)/bin/python -m benchmarks kernels int8 models

clean:
	rm -rf $(VENV) $(TORCH_VENV) build *.egg-info .pytest_cache
