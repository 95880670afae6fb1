#!/usr/bin/env bash
# Train with NPROC processes (see tools/dist_launch.sh for GPUs, CPUs and several machines).
#   bash tools/dist_train.sh CONFIG NPROC [tools/train.py options...]
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 CONFIG NPROC [tools/train.py options...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_launch.sh" "$2" train.py "$1" "${@:3}"
