# Every target builds the virtual environment from pyproject.toml first, from nothing if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint format bench venv clean pretrained

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make test: lint, then the whole test suite (slow end-to-end tests included), on two
## pytest-xdist workers (CI has two cores; compilation and small steps are single-threaded)
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

## make demo: the main job on the embedded defaults; prints where the report and plots are
demo: $(STAMP)
	$(BIN)/scifm demo --out demo

## make pretrained: rerun the shipped study that makes the shipped pre-trained model (about
## half an hour on 2 cores) and pack its weights and model card into the package
pretrained: $(STAMP)
	$(BIN)/scifm sweep pretrained --out build/pretrained
	$(BIN)/python -c "from scifm.experiments import pack_pretrained; \
	print(pack_pretrained('build/pretrained', 'fno-1m-mix64', 'src/scifm/models/pretrained'))"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

## make bench: the benchmarks behind BENCHMARKS.md's targets (tens of minutes); JSON under benchmarks/results/
## (the full PINN table: scifm bench pinn --repeats 3 --timeout 300, about an hour on 2 cores).
## The peers' own scripts run too when their checkouts are given (nothing is downloaded):
##   make bench TL_REF=/tmp/tlref STDE_REF=/tmp/stde STDE_PYTHON=/tmp/stde-env/bin/python
## (see benchmarks/data_reference.py and benchmarks/pinn_reference.py for their set-up)
bench: $(STAMP)
	@if [ -n "$(TL_REF)" ]; then $(BIN)/python benchmarks/data_reference.py --reference $(TL_REF) --out benchmarks/results/data_reference.json --overwrite; fi
	@if [ -n "$(STDE_REF)" ]; then $(BIN)/python benchmarks/pinn_reference.py --reference $(STDE_REF) --python $(STDE_PYTHON) --rounds 3 --out benchmarks/results/pinn_reference.json --overwrite; fi
	$(BIN)/scifm bench data --out benchmarks/results/data.json --overwrite
	$(BIN)/scifm bench fno --out benchmarks/results/fno.json --overwrite
	$(BIN)/scifm bench finetune --model fno-1m --resolution 64 --out benchmarks/results/finetune.json --overwrite
	$(BIN)/scifm bench pinn --dims 1000,100000 --estimators stde,sdgd,sdgd-fwd --repeats 5 --timeout 300 --out benchmarks/results/pinn_targets.json --overwrite
	$(BIN)/scifm bench pinn --operators biharmonic --dims 10000,100000 --estimators stde --repeats 5 --timeout 300 --out benchmarks/results/pinn_biharmonic_targets.json --overwrite

clean:
	rm -rf $(VENV) demo sweeps .pytest_cache
