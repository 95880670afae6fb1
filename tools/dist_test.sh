#!/usr/bin/env bash
# Evaluate a checkpoint with NPROC processes (see tools/dist_launch.sh for GPUs, CPUs and several machines).
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options...]
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 CONFIG CHECKPOINT NPROC [tools/test.py options...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_launch.sh" "$3" test.py "$1" "$2" "${@:4}"
