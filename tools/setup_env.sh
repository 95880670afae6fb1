#!/usr/bin/env bash
# Creates or updates the development environment in .venv/ (idempotent).
#
# What it installs, and why each step is here (docs/environment.md has the long story):
#   * torch 2.14.1 + torchvision 0.29.1: CUDA builds that also run on CPU; mmpretrain needs torchvision.
#   * mmcv 2.1.0 built from source WITH its C++ ops (Mask R-CNN needs RoIAlign and NMS). No wheel exists
#     for this torch; torch 2.14's headers need C++20, mmcv's setup.py hard-codes c++14/17, so the flags are
#     raised before building. The wheel is cached per torch version under $MMMSVMAMBA_CACHE because pip's
#     wheel cache keys it by mmcv's source only and would hand back a wheel built for another torch.
#   * mmengine/mmdet/mmseg/mmpretrain at the versions that fit together, plus ftfy and regex (mmseg imports
#     them without declaring them), then this package in editable mode (which compiles csrc/).
# A second run with an unchanged recipe does nothing (stamp file .venv/.mmmsvmamba-env).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE=${MMMSVMAMBA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmmsvmamba}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export MMMSVMAMBA_WITH_EMULATED=${MMMSVMAMBA_WITH_EMULATED:-1}  # the CUDA kernels on the emulated device, for tests

# Everything that decides the environment's content; a change re-runs the install (csrc/: recompiles the ops).
fingerprint() { cat "$@" | sha1sum | cut -c1-12; }
RECIPE="torch=$TORCH_VERSION tv=$TORCHVISION_VERSION mmcv=$MMCV_VERSION $(fingerprint "$ROOT"/requirements/*.txt)"
RECIPE+=" $(fingerprint "$ROOT/setup.py") $(find "$ROOT/csrc" -type f | sort | xargs cat | sha1sum | cut -c1-12)"
STAMP=$VENV/.mmmsvmamba-env

log() { echo "[setup_env] $*"; }

if [[ -f $STAMP && "$(cat "$STAMP")" == "$RECIPE" ]] && "$VENV/bin/python" -c "import mmcv._ext, mmmsvmamba.ops.compiled as c; assert 'CPU' in c.KERNEL_KEYS" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

if [[ ! -x $VENV/bin/python ]]; then
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip wheel ninja

log "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" -r "$ROOT/requirements/runtime.txt"

build_mmcv() {
  local torch_tag=$1 dest=$2 src
  src=$(mktemp -d)
  # mmcv's setup.py imports pkg_resources, gone from the setuptools that torch 2.14 wants; swap for the build only
  "${PIP[@]}" install -q 'setuptools<70'
  log "building mmcv $MMCV_VERSION with ops against torch $torch_tag (about 13 minutes on 2 cores)"
  "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$src"
  tar -xzf "$src"/mmcv-$MMCV_VERSION.tar.gz -C "$src"
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/mmcv-$MMCV_VERSION/setup.py"
  grep -q -- '-std=c++20' "$src/mmcv-$MMCV_VERSION/setup.py" || { echo "mmcv setup.py: C++ standard flag not found, patch failed" >&2; exit 1; }
  mkdir -p "$dest"
  (cd "$src/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 "${PIP[@]}" wheel -q --no-build-isolation --no-deps -w "$dest" .)
  rm -rf "$src"
  "${PIP[@]}" install -q 'setuptools>=77.0.3'
}

TORCH_TAG=$("$VENV/bin/python" -c "import torch; print(torch.__version__.replace('+', '_'))")
MMCV_WHEEL_DIR=$CACHE/wheels/torch-$TORCH_TAG
if ! "$VENV/bin/python" -c "import mmcv._ext" 2>/dev/null; then
  if ! ls "$MMCV_WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
    build_mmcv "$TORCH_TAG" "$MMCV_WHEEL_DIR"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$MMCV_WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl
fi

log "installing OpenMMLab libraries (and mmcv's own requirements) and test tools"
"${PIP[@]}" install -q -r "$ROOT/requirements/openmmlab.txt" -r "$ROOT/requirements/tests.txt"
"$VENV/bin/python" -c "import mmcv._ext" || { echo "mmcv imports without its compiled ops (mmcv._ext): the cached wheel in $MMCV_WHEEL_DIR is broken or for another torch; delete it and re-run" >&2; exit 1; }

log "installing mmmsvmamba (editable; compiles csrc/)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"

"$VENV/bin/python" -c "import mmcv._ext, mmdet, mmseg, mmpretrain, mmmsvmamba"
echo "$RECIPE" > "$STAMP"
log "done"
