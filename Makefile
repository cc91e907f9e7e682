# One command to run the stack, one to test it. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The dashboard's chart library (npm's plotly.js-basic-dist-min, pinned in app/dashboard/package-lock.json).
# Without npm the dashboard serves the full plotly.min.js of the plotly Python package instead.
PLOTLY_BASIC := app/dashboard/static/vendor/plotly-basic.min.js
$(PLOTLY_BASIC): app/dashboard/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		( npm ci --prefix app/dashboard --ignore-scripts --no-audit --no-fund --silent \
		  && mkdir -p $(@D) && cp app/dashboard/node_modules/plotly.js-basic-dist-min/plotly-basic.min.js $@ ) \
		|| echo "npm ci failed: the dashboard serves plotly's full bundle from PyPI (a slower first page)"; \
	else \
		echo "npm not found: the dashboard serves plotly's full bundle from PyPI (a slower first page)"; \
	fi

install: $(STAMP) $(PLOTLY_BASIC)

## run: migrate the database and start API + worker + scheduler on one machine
run: install
	$(BIN)/mlpipe up --host $(HOST) --port $(PORT)

## test: lint, then the whole suite on 2 processes, a test file each (Postgres/Redis on loopback when they
## answer, embedded otherwise; each process gets its own database and Redis db)
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/train.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache app/dashboard/node_modules app/dashboard/static/vendor
