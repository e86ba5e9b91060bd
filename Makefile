# Set-up is idempotent: a venv in .venv, the pinned CPU torch first (an unpinned
# torch would pull GBs of CUDA packages), then the package with its test extra.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
TASK   ?= detect   # make demo TASK=pose (or 3d)

.PHONY: setup demo test bench docs-images clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/centernet demo --task $(strip $(TASK))

test: setup
	$(PY) -m pytest tests

bench: setup
	$(PY) bench/run_all.py

docs-images: setup   # the three demos (about 27 min on 2 cores), then the pictures of README.md and docs/
	$(PY) bench/docs_images.py

clean:
	rm -rf $(VENV) runs .cache
