# The two commands of the README: `make` (set up, then build the book) and `make test`.
PY ?= python3
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)

.PHONY: all setup data demo book book-instructor colab test check lint speed url

all: setup book

# Python packages, then Debian's Fashion-MNIST, Chromium (the book's screenshot and page tests) and bubblewrap
# (the jail the classroom's grader runs students' code in)
# where apt works as root, without internet; elsewhere torchvision downloads Fashion-MNIST into ./data
# on first use (and the page tests ask for Chromium).
setup:
	$(PY) -m pip install -q -r requirements.txt
	@$(MAKE) --no-print-directory data

DEBS = $(if $(wildcard /usr/share/datasets/fashion-mnist),,dataset-fashion-mnist) $(if $(CHROMIUM),,chromium) \
	$(if $(shell command -v bwrap),,bubblewrap)
data:
	@if [ -n "$(strip $(DEBS))" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq $(DEBS) >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(DEBS) >/dev/null 2>&1; } || \
		echo "apt could not install $(DEBS); Fashion-MNIST will come from torchvision's download"; \
	fi
	$(PY) -m natmu_lite.cli fetch fashion-mnist

demo:
	$(PY) -m natmu_lite.cli demo

# The book, executed (models and results are cached under $$NATMU_CACHE), warnings as errors.
# tools/book_stamp.py: the execution cache is dropped when the package or the committed results changed,
# and a build that succeeds records what it executed, so that `make test` does not execute it again.
book:
	$(PY) tools/book_stamp.py prepare
	jupyter-book build . --builder html -W --keep-going
	$(PY) tools/book_stamp.py write notebooks
	@if [ -n "$(CHROMIUM)" ]; then mkdir -p _build/html/_static && "$(CHROMIUM)" --headless --no-sandbox \
		--disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir=$$(mktemp -d) --window-size=1280,1400 --virtual-time-budget=5000 \
		--screenshot=_build/html/_static/landing.png "file://$$PWD/_build/html/book/intro.html" 2>/dev/null \
		&& echo "landing-page screenshot: _build/html/_static/landing.png"; fi
	@echo "open _build/html/index.html"

# The instructor edition: the book plus the assignments' solutions and model answers (assignments/solutions),
# executed, into _build/instructor/_build/html. Not for public hosting; after `make book` only the solutions run.
book-instructor:
	$(PY) tools/instructor_book.py
	$(PY) tools/book_stamp.py prepare
	jupyter-book build . --toc _build/instructor/_toc.yml --config _build/instructor/_config.yml \
		--path-output _build/instructor --builder html -W --keep-going
	$(PY) tools/book_stamp.py write assignments/solutions
	@echo "open _build/instructor/_build/html/index.html"

# Every chapter and assignment notebook as a Colab reader runs it: from a wheel installed on its own in a
# new environment, outside the repository (tools/colab_like.py; --quick: fewer seeds and epochs where a
# chapter trains; models come from $$NATMU_CACHE when it holds them).
colab:
	$(PY) tools/colab_like.py --quick

test:
	$(PY) -m pytest -q

# The inner loop: lint, then the unit tests that need no notebook, no long training and no committed
# result re-run (pytest -m "not slow"), without the project's pytest options (no nbmake, no doctests).
check: lint
	$(PY) -m pytest -q -o addopts=-ra -m "not slow" -p no:cacheprovider tests

lint:
	ruff check natmu_lite tests benchmarks assignments tools examples

# The repository's address is one setting, [project.urls] Repository in pyproject.toml: this copies it
# into the notebooks' install cells, the Colab links and _config.yml (tests/test_repository.py checks).
# It refuses while the setting is the placeholder (tools/repository_url.py says what to do).
url:
	$(PY) tools/repository_url.py

speed:
	$(PY) benchmarks/trainer_speed.py
