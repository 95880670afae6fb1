# Entry points. Each target sets up what is missing first (tools/setup_env.sh is idempotent).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env build test demo clean

env:
	bash tools/setup_env.sh

# Rebuild the compiled selective-scan op in place after editing csrc/.
build: env
	$(PY) setup.py build_ext --inplace

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: env
	$(PY) tools/demo.py det

clean:
	rm -rf build *.egg-info mmmsvmamba/*.so
