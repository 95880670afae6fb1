# Entry points. Each target sets up what is missing first (tools/setup_env.sh is idempotent).
#
# Two OpenMMLab stacks are supported, each in its own environment (docs/environment.md): STACK=upstream (.venv/,
# the default) and STACK=onedl (.venv-onedl/). `make test` runs the suite on both (what CI runs); `make test
# STACK=onedl` on one. env, build, demo and the other targets use STACK (default upstream).
TEST_STACKS := $(or $(STACK),upstream onedl)
STACK ?= upstream
VENV_upstream := .venv
VENV_onedl := .venv-onedl
PY = $(VENV_$(STACK))/bin/python
PYTEST_ARGS ?=
# Development builds include the CUDA kernels on the emulated device (mmmsvmamba._C_emulated), which tests/ops run.
export MMMSVMAMBA_WITH_EMULATED ?= 1

.PHONY: env build test demo gpu-report clean test-emulated test-ubsan test-racecheck test-upstream test-onedl

env:
	STACK=$(STACK) bash tools/setup_env.sh

# Rebuild the compiled selective-scan op in place after editing csrc/.
build: env
	$(PY) setup.py build_ext --inplace

test: $(addprefix test-,$(TEST_STACKS))

test-upstream test-onedl: test-%:
	STACK=$* bash tools/setup_env.sh
	@echo "== the test suite on the $* stack ($(VENV_$*))"
	$(VENV_$*)/bin/python -m pytest tests $(PYTEST_ARGS)
	$(call racecheck,$(VENV_$*)/bin/python)

# The race-checking build of the emulated device (mmmsvmamba._C_emulated_racecheck, beside the plain one), then the
# emulated cases under it once per schedule seed: every shared- or global-memory hazard of a kernel fails its case
# (docs/ops.md, "The emulated CUDA device"). Part of `make test`: about 2 CPU-minutes with the build.
RACECHECK_SEEDS ?= 1 2 3
define racecheck
	MMMSVMAMBA_EMULATED_RACECHECK=1 MMMSVMAMBA_WITH_CUDA=0 $(1) setup.py build_ext --inplace
	for seed in $(RACECHECK_SEEDS); do \
	  echo "== the emulated cases with race checking, schedule seed $$seed"; \
	  MMMSVMAMBA_EMULATED_RACECHECK=1 MMMSVMAMBA_EMULATED_SEED=$$seed $(1) -m pytest tests/ops -k emulated \
	    $(PYTEST_ARGS) || exit 1; \
	done
endef

# Only the CUDA kernels on the emulated device: their twins of the CUDA test cases and the emulator's own tests.
test-emulated: env
	$(PY) -m pytest tests/ops -k emulated $(PYTEST_ARGS)

test-racecheck: env
	$(call racecheck,$(PY))

# The same with the emulated extension built under UBSan (undefined behaviour aborts the run), then rebuilt
# without it. Opt-in: the sanitised build and run take a few minutes.
test-ubsan: env
	MMMSVMAMBA_EMULATED_SANITIZE=undefined MMMSVMAMBA_WITH_CUDA=0 $(PY) setup.py build_ext --inplace
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(PY) -m pytest tests/ops -k emulated $(PYTEST_ARGS); \
	status=$$?; MMMSVMAMBA_WITH_CUDA=0 $(PY) setup.py build_ext --inplace && exit $$status

demo: env
	$(PY) tools/demo.py det

# On a machine with a CUDA device (torch + nvcc, no environment of ours, no OpenMMLab): build, check, sanitize and
# benchmark the CUDA op within one time budget, writing GPU_OUT/gpu_report.{json,md} after every step
# (tools/gpu_report.py; `--list` shows the steps). GPU_OUT is $OUT when the environment sets one, else gpu_report/.
# OFFICIAL=<a git clone of YuHengsss/MSVMamba> measures the official code side by side (docs/benchmarks.md).
GPU_PYTHON ?= python3
GPU_OUT ?= $(or $(OUT),gpu_report)
gpu-report:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) tools/gpu_report.py --out $(GPU_OUT) $(if $(OFFICIAL),--official $(OFFICIAL))

clean:
	rm -rf build *.egg-info mmmsvmamba/*.so
