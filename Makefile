# The two commands a newcomer needs: `make up` (a working horde) and `make test` (everything CI runs).
# Both bootstrap uv with whatever python3 exists when uv is not installed.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PORT ?= 7001

.PHONY: up test mutate

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install -q uv

up: $(UV)
	$(UV) sync --frozen
	$(UV) run --frozen horde up --port $(PORT)

# The tests also cover the diffusers backend, so they install the `image` extra (torch: a large
# download the first time, then from uv's cache).
TEST_RUN := $(UV) run --frozen --extra image

test: $(UV)
	$(UV) sync --frozen --extra image
	scripts/system-deps.sh
	scripts/install-chromium.sh
	scripts/ensure-services.sh
	$(TEST_RUN) ruff check src tests bench migrations
	$(TEST_RUN) ruff format --check src tests bench migrations
	$(TEST_RUN) mypy
	$(TEST_RUN) pytest -q -n 2 --dist loadgroup

# Mutation testing of one core module, not part of CI (README "Mutation testing"):
# `make mutate MODULE=pricing`; without MODULE it lists the modules and the tests mapped to each.
mutate: $(UV)
	$(TEST_RUN) python -m scripts.mutate $(MODULE) $(ARGS)
