# Two commands set everything up on a fresh clone: `make demo` and `make test`.
# Both create .venv when it is missing and install into it once (stamp file .venv/.mfe-installed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mfe-installed
DEMO   ?= demo
# make bench-fusion: face, behaviour, physiology alone and fused on demo cohorts (issue 17)
FUSION_DIR   ?= bench_fusion
FUSION_SEEDS ?= 1 2 3
# make bench-mgs: Mouse Grimace Scale AU heads against simulated raters and the truth on demo cohorts (issue 15)
MGS_DIR     ?= bench_mgs
MGS_SEEDS   ?= 1 2 3
MGS_TARGETS ?= au+class
# make bench-accuracy-cohorts: the advanced model against the oracle over several bench cohorts (issue 10)
COHORTS_DIR        ?= bench_cohorts
COHORT_SEEDS       ?= 2 3 4 5
COHORT_TRAIN_SEEDS ?= 1 2
COHORT_EPOCHS      ?= 20
COHORT_JOBS        ?= 1
COHORT_WORKERS     ?= 1
# make bench-accuracy: cohort folder, minutes per model and seed, training seeds, epochs (default: what fits), models
BENCH_PROJ ?= bench_proj
BUDGET     ?= 5
SEEDS      ?= 97531 1 2
SYNTH_SEED ?= 1
EPOCHS     ?=
MODELS     ?=

# make bench-shift: work folder, synth seed of the training cohort (test cohorts: seed + 1)
SHIFT_DIR  ?= bench_shift
SHIFT_SEED ?= 0

# make bench-recipe: cohorts folder, synthetic seeds (not tuned on), recipes, training seeds
RECIPE_DIR   ?= bench_recipe
RECIPE_SYNTH ?= 11 12 13
RECIPES      ?= mfe1 mfe2
RECIPE_SEEDS ?= 1

# make bench-weak: work folder, synthetic seeds (one demo cohort each, --bout-fraction 0.3), epochs
WEAK_DIR    ?= bench_weak
WEAK_SEEDS  ?= 1 2 3
WEAK_EPOCHS ?= 4
WEAK_START  ?= 2

.PHONY: demo test bench bench-smoke bench-accuracy bench-accuracy-cohorts bench-eye-warp bench-fusion bench-mgs bench-recipe bench-same-training bench-shift bench-weak install clean-demo docs docs-ref help

help:
	@echo "make demo   - synthetic cohort -> ... -> the furthest pipeline stage, on CPU"
	@echo "make test   - run the test suite (CPU, tiny synthetic data)"
	@echo "make bench  - run the speed benchmarks in bench/ (prints numbers, a few minutes)"
	@echo "make bench-smoke - every benchmark's --smoke run: the same code on the smallest settings (about a minute)"
	@echo "make docs   - install the [docs] extra and build the documentation site into site/ (mkdocs --strict)"
	@echo "make docs-ref - regenerate docs/reference/cli.md and configuration.md from the code"
	@echo "make bench-accuracy - build the synthetic 'bench' cohort and compare the models with the oracle"
	@echo "             (BUDGET=$(BUDGET) min per model and seed, SEEDS='$(SEEDS)': about 50 min on 2 CPU cores)"
	@echo "make bench-accuracy-cohorts - advanced against the oracle over 4 bench cohorts (COHORT_SEEDS='$(COHORT_SEEDS)'),"
	@echo "             20 epochs per fold: about 5 min on one GPU with COHORT_JOBS=4 COHORT_WORKERS=3; many hours on 2 CPU cores"
	@echo "make bench-fusion - face, behaviour and physiology alone and fused, and an uninformative physiology"
	@echo "             (FUSION_SEEDS='$(FUSION_SEEDS)': 61-70 min for 3 cohorts on 2 CPU cores in fp32 while other jobs ran)"
	@echo "make bench-mgs - MGS action-unit heads (--targets $(MGS_TARGETS)) against 3 simulated raters and the truth"
	@echo "             (MGS_SEEDS='$(MGS_SEEDS)', MGS_TARGETS='au+class au' adds the AU-only model: roughly 50 min per variant on 2 CPU cores, estimated)"
	@echo "make bench-eye-warp - real head-fixed eyes warped to orbital-tightening levels 0-2: train on one"
	@echo "             recording, score the other (seeds 1 2 3; about 7 min per seed on 2 CPU cores while other jobs ran)"
	@echo "make bench-shift - new-cohort robustness: zero-shot, baseline-relative, adabn, video_hist and"
	@echo "             controls recalibration on shifted synthetic cohorts, and the recording-4 cue (SHIFT_SEED=$(SHIFT_SEED);"
	@echo "             well over an hour on 2 CPU cores: building the cohorts took 10 min and scoring 26 min, plus 6 trainings)"
	@echo "make bench-weak - video labels vs --weak em vs --weak attention on demo cohorts whose sickness comes in bouts"
	@echo "             (WEAK_SEEDS='$(WEAK_SEEDS)' WEAK_EPOCHS=$(WEAK_EPOCHS) WEAK_START=$(WEAK_START), fold 0)"
	@echo "make bench-same-training - the same tiny task trained by the pinned commit and by this tree, 6 model kinds:"
	@echo "             are the histories and scores identical? (about 5 min on 2 CPU cores; needs git history)"
	@echo "make bench-recipe - training recipes side by side at 3 epochs x 160 clips on demo cohorts"
	@echo "             (RECIPE_SYNTH='$(RECIPE_SYNTH)' RECIPES='$(RECIPES)' RECIPE_SEEDS='$(RECIPE_SEEDS)': about 1 h on 2 CPU cores, fp32)"

# pyproject.toml declares compatible ranges; constraints.txt holds the exact tested set that CI and
# `make test` use. torch is pinned in the same pip command so that no other package can upgrade it.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt torch==2.13.0 -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# The documentation site: docs/ + mkdocs.yml -> site/. The reference pages are generated from the
# code (make docs-ref; tests/test_docs.py fails when they are stale). NO_MKDOCS_2_WARNING: mute
# mkdocs-material's banner about its end of life.
docs: $(STAMP)
	# torch is pinned in the same pip command so that no other package can upgrade it.
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt torch==2.13.0 -e '.[docs]'
	$(PY) -m mouse_facial_expressions.cli.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-ref: $(STAMP)
	$(PY) -m mouse_facial_expressions.cli.docs --write

demo: $(STAMP)
	$(VENV)/bin/mfe demo $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -n auto --maxprocesses 4

# The speed benchmarks: every bench/bench_*.py that needs no cohort, trained run or folder argument.
bench: $(STAMP)
	@for b in bench/bench_*.py; do case $$b in *bench_accuracy.py|*bench_accuracy_cohorts.py|*bench_fusion.py|*bench_mgs.py|*bench_quantize.py|*bench_recipe.py|*bench_same_training.py|*bench_shift.py|*bench_weak.py) continue;; esac; \
		echo "== $$b"; $(PY) $$b || exit 1; done
	@echo "(accuracy against the oracle: make bench-accuracy, make bench-recipe)"

# Every benchmark's --smoke run (seconds each; tests/test_bench_smoke.py)
bench-smoke: $(STAMP)
	$(PY) -m pytest tests/test_bench_smoke.py -q

$(BENCH_PROJ)/tasks: | $(STAMP)
	$(VENV)/bin/mfe synth $(BENCH_PROJ) --preset bench --synth-seed $(SYNTH_SEED)
	cd $(BENCH_PROJ) && $(abspath $(VENV))/bin/mfe prepare && $(abspath $(VENV))/bin/mfe keypoints import \
		&& $(abspath $(VENV))/bin/mfe extract --decode-workers 2 && $(abspath $(VENV))/bin/mfe task make

bench-accuracy: $(BENCH_PROJ)/tasks
	$(PY) bench/bench_accuracy.py $(BENCH_PROJ) --budget_min $(BUDGET) --workers 0 --seeds $(SEEDS) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(MODELS),--models $(MODELS))

bench-accuracy-cohorts: $(STAMP)
	$(PY) bench/bench_accuracy_cohorts.py $(COHORTS_DIR) --synth_seeds $(COHORT_SEEDS) --seeds $(COHORT_TRAIN_SEEDS) --epochs $(COHORT_EPOCHS) --jobs $(COHORT_JOBS) --workers $(COHORT_WORKERS)

bench-fusion: $(STAMP)
	$(PY) bench/bench_fusion.py $(FUSION_DIR) --seeds $(FUSION_SEEDS)

bench-mgs: $(STAMP)
	$(PY) bench/bench_mgs.py $(MGS_DIR) --seeds $(MGS_SEEDS) --targets $(MGS_TARGETS)

bench-eye-warp: $(STAMP)
	$(PY) bench/bench_eye_warp.py --no_sheet --seed 1 2 3

bench-shift: $(STAMP)
	$(PY) bench/bench_shift.py $(SHIFT_DIR) --seed $(SHIFT_SEED) --confounds

clean-demo:
	rm -rf $(DEMO)

bench-weak: $(STAMP)
	$(PY) bench/bench_weak.py $(WEAK_DIR) --preset demo --seeds $(WEAK_SEEDS) --epochs $(WEAK_EPOCHS) --weak_start $(WEAK_START) --folds 0

bench-recipe: $(STAMP)
	$(PY) bench/bench_recipe.py --cohorts $(RECIPE_DIR) --synth_seeds $(RECIPE_SYNTH) --recipes $(RECIPES) \
		--seeds $(RECIPE_SEEDS) --json $(RECIPE_DIR)/results.json

bench-same-training: $(STAMP)
	$(PY) bench/bench_same_training.py
