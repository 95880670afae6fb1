#!/usr/bin/env bash
# torchrun NPROC processes of one tool on this machine (one per GPU; on a machine without GPUs, CPU processes over
# gloo). Called by dist_train.sh and dist_test.sh:
#   bash tools/dist_launch.sh NPROC TOOL.py [TOOL.py arguments...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each. PYTHON names the interpreter (default:
# the repository's .venv when it exists).
set -euo pipefail
NPROC=$1
TOOL=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python; fi
fi

"$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$ROOT/tools/$TOOL" "${@:3}" --launcher pytorch
