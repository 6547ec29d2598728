# tiein — the two front-door commands:
#   make demo   set up .venv and build the graph from Online Retail I, then show products with
#               their complements and substitutes (embedded store, no server needed)
#   make test   set up .venv and run the linter, the type checker and the whole test suite (what CI runs)
# and for the edit loop:
#   make fast   the linter, the type checker and the tests not marked slow, stopping at the first failure
#   make quality  held-out cart completion and anchor tables, tiein vs baselines (bench/quality.py)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tiein-installed
CYPHER_CHECK := tools/cypher-check

.PHONY: setup cjk-font browser demo test fast bench quality clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[embeddings,api,dev,bench,spark]'
	# the compiled mining kernels, compiled once now rather than in the first build
	$(BIN)/python -c 'from tiein.mining import jit, jit_keys; from tiein.next_purchase import jit as n; from tiein import candidate_jit as c; jit.warm(); jit_keys.warm(); n.warm(); c.warm()'
	touch $(STAMP)

$(CYPHER_CHECK)/node_modules/.installed: $(CYPHER_CHECK)/package.json $(CYPHER_CHECK)/package-lock.json
	npm ci --prefix $(CYPHER_CHECK) --no-audit --no-fund --loglevel=error
	touch $@

# A CJK font, so the A/B report's charts draw Chinese labels, not empty boxes (tiein/feedback/fonts.py):
# Debian/Ubuntu's fonts-noto-cjk, installed when running as root; otherwise a note on what to install.
cjk-font:
	@fc-list 2>/dev/null | grep -qi cjk || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; \
	  else \
	    echo "note: no CJK font: install one (sudo apt-get install fonts-noto-cjk) for Chinese labels in A/B report charts"; \
	  fi; }

# Chromium, so tests/test_api_page.py checks the analyst page in a real headless browser (CI
# requires it; without it those tests skip here): installed when running as root with apt.
browser:
	@command -v chromium >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: no chromium: install it (sudo apt-get install chromium) to run the analyst page tests"; \
	  fi; }

setup: $(STAMP) $(CYPHER_CHECK)/node_modules/.installed cjk-font browser

demo: $(STAMP)
	$(BIN)/tiein build --dataset online_retail --show 5

test: setup
	$(BIN)/ruff check tiein graph embeddings loaders tests bench
	$(BIN)/ruff format --check tiein graph embeddings loaders tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

fast: setup
	$(BIN)/ruff check tiein graph embeddings loaders tests bench
	$(BIN)/ruff format --check tiein graph embeddings loaders tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -x -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/mining.py
	$(BIN)/python bench/relation_quality.py

# relation quality on held-out baskets of every shared dataset with orders, tiein vs baselines
quality: $(STAMP)
	$(BIN)/python bench/quality.py

clean:
	rm -rf tiein-data
