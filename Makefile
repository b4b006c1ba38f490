# The two entry points of the README. Each creates .venv/ at the repo root from the pinned pyproject.toml
# (idempotent: a stamp file skips the install when pyproject.toml has not changed).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: lab test tour bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Main job: JupyterLab on the guided notebooks (until they land: the headless tour).
lab: $(STAMP)
	$(VENV)/bin/python examples/tour.py

tour: $(STAMP)
	$(VENV)/bin/python examples/tour.py

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
