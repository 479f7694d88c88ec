# Two commands on a fresh machine: `make example` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: example test bench

# Install clusterimg-gen and generate the example repository's pipeline, then show its plan.
example:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check .
	$(VENV)/bin/clusterimg-gen workflows --repo examples
	$(VENV)/bin/clusterimg-gen plan --repo examples --all

# Install the test tools (Debian packages and the test extras), then run the whole suite.
test:
	bash tests/setup.sh $(VENV)
	$(PY) -m pytest -ra $(PYTEST_ARGS)

bench:
	$(PY) benchmarks/generator_bench.py
	$(PY) benchmarks/action_bench.py
