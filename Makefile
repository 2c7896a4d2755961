# The two commands of the README: `make` (set up, then run the main job) and `make test`.
PY ?= python3

.PHONY: all setup data demo test lint speed

all: setup demo

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

test:
	$(PY) -m pytest -q

lint:
	ruff check natmu_lite tests benchmarks

speed:
	$(PY) benchmarks/trainer_speed.py
