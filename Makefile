# The two commands of the README: `make` (set up, then run the main job) and `make test`.
PY ?= python3

.PHONY: all setup data demo book test lint speed

all: setup book

# Python packages, then the offline default dataset: Debian's package where apt works (as root, no
# internet needed), otherwise torchvision downloads it into ./data on first use.
setup:
	$(PY) -m pip install -q -r requirements.txt
	@$(MAKE) --no-print-directory data

data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || \
		echo "apt could not install dataset-fashion-mnist; falling back to torchvision's download"; \
	fi
	$(PY) -m natmu_lite.cli fetch fashion-mnist

demo:
	$(PY) -m natmu_lite.cli demo

# The book, executed (models and results are cached under $$NATMU_CACHE), warnings as errors.
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)
book:
	jupyter-book build . --builder html -W --keep-going
	@if [ -n "$(CHROMIUM)" ]; then mkdir -p _build/html/_static && "$(CHROMIUM)" --headless --no-sandbox \
		--disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir=$$(mktemp -d) --window-size=1280,1400 --virtual-time-budget=5000 \
		--screenshot=_build/html/_static/landing.png "file://$$PWD/_build/html/book/intro.html" 2>/dev/null \
		&& echo "landing-page screenshot: _build/html/_static/landing.png"; fi
	@echo "open _build/html/index.html"

test:
	$(PY) -m pytest -q

lint:
	ruff check natmu_lite tests benchmarks

speed:
	$(PY) benchmarks/trainer_speed.py
