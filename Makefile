# Two entry points, both from a fresh clone: `make demo` (the main job) and `make test`.
# Each creates or reuses .venv and installs what it needs from the project's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
PIP := $(BIN)/python -m pip -q --disable-pip-version-check

.PHONY: install demo test bench results clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[dev,tensorboard,ray]"
	# DGL's wheel metadata would drag in a new torch: install it and torchdata without deps.
	$(PIP) install -c constraints.txt --no-deps dgl==2.1.0 torchdata==0.9.0
	$(PIP) install -c constraints.txt networkx psutil requests urllib3
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/build_graphs.py --config configs/experiments/demo_sdmtmp.yaml
	$(BIN)/python -m mmseq train --config configs/experiments/demo_sdmtmp.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

results: $(STAMP)
	$(BIN)/python scripts/make_results.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache
