"""tools/benchmark_scan.py at its smallest settings: it runs both ops forward and backward on every stage and
prints one table row per (stage, op, pass) with finite positive figures. No timing is asserted."""
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_op_table_has_every_stage_op_and_pass():
    result = subprocess.run([sys.executable, 'tools/benchmark_scan.py', '--device', 'cpu', '--threads', '1',
                             '--shapes', 'cls', '--batch-cls', '1', '--repeat', '1'],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    rows = [line.split('|')[1:-1] for line in result.stdout.splitlines() if line.startswith('| cls')]
    assert {(r[1].strip(), r[2].strip(), r[4].strip()) for r in rows} == {
        (str(stage), op, p) for stage in range(1, 5) for op in ('selective_scan_fn', 'ms2d_half_res_scan')
        for p in ('fwd', 'fwd+bwd')}
    for row in rows:
        time_ms, gbytes, ns = (float(v) for v in row[5:8])
        assert all(math.isfinite(v) for v in (time_ms, gbytes, ns)) and time_ms > 0 and ns > 0, row
