#!/usr/bin/env bash
# Creates or updates a development environment (idempotent): STACK=upstream (default, in .venv/) or STACK=onedl
# (in .venv-onedl/).
#
# What it installs, and why each step is here (docs/environment.md has the table and the long story):
#   * torch 2.14.1 + torchvision 0.29.1: CUDA builds that also run on CPU; mmpretrain needs torchvision.
#   * the stack's mmcv built from source WITH its C++ ops (Mask R-CNN needs RoIAlign and NMS): mmcv 2.1.0
#     (upstream) or onedl-mmcv 2.3.6 (onedl). No wheel exists for this torch; torch 2.14's headers need C++20, and
#     both setup.py files hard-code older standards, so the flags are raised before building. The wheel is cached
#     per torch version under $MMMSVMAMBA_CACHE because pip's wheel cache keys it by the source only and would hand
#     back a wheel built for another torch; `import mmcv._ext` is checked after installing.
#   * the stack's OpenMMLab libraries and pins (requirements/stack-$STACK.txt), then this package in editable
#     mode (which compiles csrc/).
# A second run with an unchanged recipe does nothing (stamp file $VENV/.mmmsvmamba-env).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK=${STACK:-upstream}
case $STACK in
  upstream) MMCV_DIST=mmcv; MMCV_VERSION=2.1.0; DEFAULT_VENV=$ROOT/.venv ;;
  onedl) MMCV_DIST=onedl-mmcv; MMCV_VERSION=2.3.6; DEFAULT_VENV=$ROOT/.venv-onedl ;;
  *) echo "setup_env.sh: error: unknown STACK=$STACK (choose upstream or onedl)" >&2; exit 2 ;;
esac
VENV=${VENV:-$DEFAULT_VENV}
PY=${PYTHON:-python3.11}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
CACHE=${MMMSVMAMBA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmmsvmamba}
STACK_REQUIREMENTS=$ROOT/requirements/stack-$STACK.txt
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export MMMSVMAMBA_WITH_EMULATED=${MMMSVMAMBA_WITH_EMULATED:-1}  # the CUDA kernels on the emulated device, for tests

# Everything that decides the environment's content; a change re-runs the install (csrc/: recompiles the ops).
fingerprint() { cat "$@" | sha1sum | cut -c1-12; }
RECIPE="stack=$STACK torch=$TORCH_VERSION tv=$TORCHVISION_VERSION $MMCV_DIST=$MMCV_VERSION emulated=$MMMSVMAMBA_WITH_EMULATED"
RECIPE+=" $(fingerprint "$ROOT"/requirements/*.txt) $(fingerprint "$ROOT/setup.py" "$0")"
RECIPE+=" $(find "$ROOT/csrc" -type f | sort | xargs cat | sha1sum | cut -c1-12)"
STAMP=$VENV/.mmmsvmamba-env

log() { echo "[setup_env $STACK] $*"; }

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

log "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION and the stack's pins"
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" -r "$STACK_REQUIREMENTS"

# Builds the stack's mmcv wheel with its C++ ops into $2 (the wheel cache of this torch).
build_mmcv() {
  local torch_tag=$1 dest=$2 src dir
  src=$(mktemp -d)
  log "building $MMCV_DIST $MMCV_VERSION with ops against torch $torch_tag (about 15 minutes on 2 cores)"
  "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "$MMCV_DIST==$MMCV_VERSION" -d "$src"
  tar -xzf "$src"/*.tar.gz -C "$src"
  dir=$(find "$src" -mindepth 1 -maxdepth 1 -type d)
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$dir/setup.py"
  grep -q -- '-std=c++20' "$dir/setup.py" || { echo "$MMCV_DIST setup.py: C++ standard flag not found, patch failed" >&2; exit 1; }
  mkdir -p "$dest"
  # --no-build-isolation: the build must see the installed torch (an isolated build silently skips the ops).
  # -g0: no debug information, which costs a third of the compile time and is never used
  (cd "$dir" && MMCV_WITH_OPS=1 CFLAGS="${CFLAGS:-} -g0" "${PIP[@]}" wheel -q --no-build-isolation --no-deps -w "$dest" .)
  rm -rf "$src"
}

TORCH_TAG=$("$VENV/bin/python" -c "import torch; print(torch.__version__.replace('+', '_'))")
MMCV_WHEEL_DIR=$CACHE/wheels/torch-$TORCH_TAG
MMCV_WHEEL_GLOB="$MMCV_WHEEL_DIR/${MMCV_DIST//-/_}-$MMCV_VERSION-*.whl"
if ! "$VENV/bin/python" -c "import mmcv._ext" 2>/dev/null; then
  # shellcheck disable=SC2086
  if ! ls $MMCV_WHEEL_GLOB >/dev/null 2>&1; then
    if [[ $STACK == upstream ]]; then
      # mmcv 2.1's setup.py imports pkg_resources, which setuptools 82+ no longer has
      "${PIP[@]}" install -q 'setuptools<70'
      build_mmcv "$TORCH_TAG" "$MMCV_WHEEL_DIR"
      "${PIP[@]}" install -q -r "$STACK_REQUIREMENTS"  # puts the stack's setuptools back
    else
      build_mmcv "$TORCH_TAG" "$MMCV_WHEEL_DIR"
    fi
  fi
  # shellcheck disable=SC2086
  "${PIP[@]}" install -q --no-deps --force-reinstall $MMCV_WHEEL_GLOB
fi

log "installing the OpenMMLab libraries and test tools"
"${PIP[@]}" install -q -r "$STACK_REQUIREMENTS" -r "$ROOT/requirements/tests.txt"
"$VENV/bin/python" -c "import mmcv._ext" || { echo "mmcv imports without its compiled ops (mmcv._ext): the cached wheel in $MMCV_WHEEL_DIR is broken or for another torch; delete it and re-run" >&2; exit 1; }

# Without a GPU the CUDA extension is only compiled and loaded (tests/ops runs its kernels on the emulated device),
# so one architecture is enough; with a GPU, that GPU's. Users' installs build setup.py's full list.
if [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]]; then
  TORCH_CUDA_ARCH_LIST=$("$VENV/bin/python" -c "import torch; print('{}.{}'.format(*torch.cuda.get_device_capability()) if torch.cuda.is_available() else '9.0')")
  export TORCH_CUDA_ARCH_LIST
fi
log "installing mmmsvmamba (editable; compiles csrc/ for CUDA arch $TORCH_CUDA_ARCH_LIST)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"

"$VENV/bin/python" -c "import mmcv._ext, mmdet, mmseg, mmpretrain, mmmsvmamba"
echo "$RECIPE" > "$STAMP"
log "done"
