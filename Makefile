# Two commands on a fresh machine: `make example` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: example test bench requirements

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

# Refresh the hashed locks in requirements/ from their .in files, from PyPI only, whatever pip's own config says.
# Each pin lists the hash of every file PyPI has for it, so one lock serves every Python and arch of the runners.
# Pass PIP_COMPILE_ARGS=--upgrade to move the pins to the newest releases.
requirements:
	$(VENV)/bin/pip install --quiet --disable-pip-version-check pip-tools
	for name in runner render github release evidence; do \
	  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	    CUSTOM_COMPILE_COMMAND="make requirements" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	    --strip-extras --index-url https://pypi.org/simple --no-emit-index-url $(PIP_COMPILE_ARGS) \
	    -o requirements/$$name.txt requirements/$$name.in || exit 1; \
	done
