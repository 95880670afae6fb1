# Entry points. Each target sets up what is missing first (tools/setup_env.sh is idempotent).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env build test demo gpu-report clean

env:
	bash tools/setup_env.sh

# Rebuild the compiled selective-scan op in place after editing csrc/.
build: env
	$(PY) setup.py build_ext --inplace

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: env
	$(PY) tools/demo.py det

# On a machine with a CUDA device (and torch + nvcc, no environment of ours needed): build, check, test and
# benchmark the CUDA op, writing gpu_report/gpu_report.{json,md} (tools/gpu_report.py).
GPU_PYTHON ?= python3
gpu-report:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) tools/gpu_report.py --out gpu_report

clean:
	rm -rf build *.egg-info mmmsvmamba/*.so
