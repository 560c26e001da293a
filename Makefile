# One command per job. Both do their own set-up on a fresh machine (.venv, pinned install).
#   make lab    open JupyterLab on notebooks/
#   make test   the whole test suite (what CI runs, with make browser-test and make binder-rehearsal)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root without this; learners and Binder are not root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup build check lab test browser-test chromium binder-rehearsal bench lock datasets clean

setup: $(STAMP)

$(STAMP): pyproject.toml binder/requirements.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 13) else "Python 3.11 or 3.12 is needed (set PYTHON=...); found %d.%d" % v)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r binder/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

build: setup           ## rebuild instructor editions and notebooks/ from course/source
	$(BIN)/autograder build

check: setup
	$(BIN)/autograder check

lab: setup            ## LAB_ARGS="--port=8899 --no-browser" passes options through
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG) $(LAB_ARGS)

test: setup            ## every test but the browser test; notebooks run offline (tests/offline.py)
	$(BIN)/python -m pytest -n 2 --durations=15 -m "not browser"

browser-test: setup chromium   ## JupyterLab in headless Chromium; screenshots in build/browser-screenshots/
	rm -rf build/browser-screenshots
	$(BIN)/python -m pytest -m browser tests/test_browser.py -s --durations=0

chromium:              ## Debian's Chromium at /usr/bin/chromium (never a browser download of a test tool)
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update && apt-get install -y chromium; \
	  else \
	    echo "make browser-test needs Debian's Chromium at /usr/bin/chromium: run 'sudo apt-get install -y chromium' first." >&2; exit 1; \
	  fi; \
	fi

binder-rehearsal: setup   ## what repo2docker does with binder/, then every learner notebook in that JupyterLab
	$(BIN)/python tests/binder_rehearsal.py

bench: setup           ## notebook run times and widget figure times (figures for the notes)
	$(BIN)/python tests/bench.py

lock:                  ## re-resolve pyproject's ranges in a clean venv and pin the result
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^archlab-course' > binder/requirements.txt
	rm -rf .lock-venv

datasets: setup        ## regenerate the shipped datasets and their manifest
	$(BIN)/python -m archlab.datasets --out datasets

clean:
	rm -rf $(VENV) course/release course/autograded course/feedback course/exports course/gradebook.db
