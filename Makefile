# The two commands a newcomer needs: `make up` (a working horde) and `make test` (everything CI runs).
# Both bootstrap uv with whatever python3 exists when uv is not installed.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PORT ?= 7001

.PHONY: up test lint typecheck migrations-check unit bootstrap

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install -q uv

bootstrap: $(UV)
	$(UV) sync --frozen

up: bootstrap
	$(UV) run --frozen horde up --port $(PORT)

test: bootstrap
	scripts/system-deps.sh
	scripts/install-chromium.sh
	scripts/ensure-services.sh
	$(UV) run --frozen ruff check src tests bench migrations
	$(UV) run --frozen ruff format --check src tests bench migrations
	$(UV) run --frozen mypy
	$(UV) run --frozen pytest -q -n 2 --dist loadgroup
