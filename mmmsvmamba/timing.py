"""The one timing helper of the package: wall and process-CPU seconds of repeated runs of a function.

Every measurement (``analysis.benchmark``, ``analysis.scan_bench``, ``deploy.measure``) times through
:func:`time_runs`: ``warmup`` untimed calls, then ``runs`` timed runs of ``iters`` calls each, every run bracketed
by a synchronisation of ``device`` when it is a CUDA device (so the seconds cover the queued kernels, not their
launch). Wall seconds are ``time.perf_counter``; CPU seconds ``cpu_clock``'s, by default ``time.process_time``
(all threads of the process, which does not depend on what else the machine runs; ``time.thread_time`` also
ignores the time the calling thread spends preempted).
"""
import time
from typing import Callable, List, Optional, Tuple

import torch


def _sync(device) -> None:
    if device is not None and torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], object], runs: int, iters: int = 1, warmup: int = 0,
              device: Optional[object] = None, cpu_clock: Callable[[], float] = time.process_time
              ) -> Tuple[List[float], List[float]]:
    """(wall seconds, CPU seconds) of each of ``runs`` timed runs of ``iters`` calls of ``fn``, after ``warmup``
    untimed calls; ``device`` (a CUDA device or None) is synchronised around each run."""
    for _ in range(warmup):
        fn()
    _sync(device)
    wall, cpu = [], []
    for _ in range(runs):
        _sync(device)
        start, start_cpu = time.perf_counter(), cpu_clock()
        for _ in range(iters):
            fn()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(cpu_clock() - start_cpu)
    return wall, cpu
