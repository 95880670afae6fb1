"""Everything owed to a machine with a CUDA device, as one report (``tools/gpu_report.py``, ``make gpu-report``).

The steps (:func:`steps`, in order of value; ``--list`` prints them with their commands), each a fresh process
run from the checkout with a timeout, under one budget for the whole report (``--budget``, default 530 s: one
device call is limited to 10 minutes): a step runs only if its minimum fits in what is left, and its timeout is cut
to what is left; a skipped or timed-out step says so in the results.

a. ``build``: the op for this GPU's compute capability only (CUDA and the emulated device); ``build official``
   (with ``--official``): the official selective-scan kernel in a scratch copy (:mod:`.official`);
b. correctness: ``ops.check --require-cuda``; every CUDA case of tests/ops (``-k "cuda and not emulated"``, no
   ``-x``: every failure is listed); the official equivalence fixture on CUDA in strict float32, MSVMamba-T
   logits and gradients CUDA vs CPU kernels, AMP fp16 / bf16 training (:mod:`.gpu_checks`);
c. ``compute-sanitizer`` memcheck, racecheck and synccheck over :data:`SANITIZER_CASES` (sequence and half-res,
   forward and backward, one and several chunks); any hazard or error in its summary fails the step;
d. speed: the device-to-device copy bandwidth, the scan benchmark (float32, bfloat16; the tables get a "% of
   copy" column), the classifier benchmark under the anchors' protocol (AMP fp16, batch 128, 224x224) for
   MSVMamba-T, the peers from torchvision and, with ``--official``, the official v3 Tiny (ours / official per
   row), the detection-size backbone step (2x3x800x1333, AMP fp16, forward + backward), then the classifier
   benchmark again under ``torch.compile`` (every model alike);
f. ``OUT/gpu_report.json`` (every step's command, status, seconds, output tail and parsed results) and
   ``OUT/gpu_report.md`` (tables for docs/benchmarks.md), both rewritten after every step.

Before the first step, :func:`prepare` does everything that needs no CUDA device (the fixture, the official
scratch copy, importing what every step runs, collecting the test cases the steps select); ``--prepare`` stops
there, which is how the report is tested on machines without a GPU.
"""
import json
import os
import re
import runpy
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the build, the tests and the tools run from it
FIXTURE = ROOT / 'tests' / 'data' / 'official' / 'msvmamba_v3_tiny_d1111_w24.pt'
DEFAULT_BUDGET = 530
# small problems that cover the kernels' paths: sequence and half-res, forward and backward, one and several chunks
SANITIZER_CASES = ('tests/ops/test_compiled.py::test_sequence_matches_reference[37-cuda-dtype3]',
                   'tests/ops/test_compiled.py::test_sequence_matches_reference[1000-cuda-dtype3]',
                   'tests/ops/test_compiled.py::test_half_res_matches_reference[True-size1-cuda-dtype3]',
                   'tests/ops/test_compiled.py::test_sequence_groups[2-cuda]')
SANITIZER_TOOLS = ('memcheck', 'racecheck', 'synccheck')
OUR_KERNELS = ('kns=scan_', 'kns=chunk_carry')  # csrc/selective_scan/cuda: scan_{fwd,bwd,bwd_summary}_kernel
CHECKS = ('fixture', 'cuda-vs-cpu', 'amp', 'copy-bandwidth', 'build-official')
PEERS = ('convnext-t', 'swin-t', 'resnet50')
CLASSIFY_PROTOCOL = ('--device', 'cuda', '--amp', 'fp16', '--bs', '128', '--res', '224')


@dataclass
class Step:
    name: str
    command: List[str]
    timeout: int  # seconds at most
    minimum: int  # seconds it needs to be worth starting
    env: dict = field(default_factory=dict)
    result: Optional[str] = None  # a JSON file the step writes (relative to OUT), merged into the report
    background: bool = False  # started with the report (it needs no GPU); its turn in the order collects it


def _python() -> List[str]:
    """This interpreter with the flags it runs under (``-S`` in the no-OpenMMLab test)."""
    return [sys.executable] + (['-S'] if sys.flags.no_site else [])


def _report_check(name: str, out: Path, *extra) -> List[str]:
    return [*_python(), 'tools/gpu_report.py', '--check', name, '--result', str(out / f'{name}.json'), *extra]


def steps(out: Path, capability=(9, 0), official: Optional[str] = None, fixture: Path = FIXTURE) -> List[Step]:
    """The report's steps for a device of ``capability`` (major, minor), writing into ``out``."""
    python = _python()
    scratch = str(out / 'official_scratch')
    result = [Step('build', [*python, 'setup.py', 'build_ext', '--inplace'], 300, 60,
                   dict(MMMSVMAMBA_WITH_CUDA='1', MMMSVMAMBA_WITH_EMULATED='1', MAX_JOBS=str(os.cpu_count() or 1),
                        TORCH_CUDA_ARCH_LIST='{}.{}'.format(*capability)))]
    if official:
        result.append(Step('build official', _report_check('build-official', out, '--official', official), 300, 60,
                           dict(MAX_JOBS=str(os.cpu_count() or 1)), 'build-official.json', background=True))
    result += [
        Step('ops.check --require-cuda', [*python, '-m', 'mmmsvmamba.ops.check', '--require-cuda'], 60, 10),
        Step('pytest tests/ops (CUDA)', [*python, '-m', 'pytest', 'tests/ops', '-q', '-rfE', '-p',
                                         'no:cacheprovider', '-k', 'cuda and not emulated'], 180, 30),
        Step('fixture on CUDA (fp32, TF32 off)', _report_check('fixture', out, '--fixture', str(fixture)), 60, 15,
             result='fixture.json'),
        Step('MSVMamba-T CUDA vs CPU kernels', _report_check('cuda-vs-cpu', out), 120, 20, result='cuda-vs-cpu.json'),
        Step('AMP fp16 / bf16 training', _report_check('amp', out), 120, 20, result='amp.json')]
    for tool in SANITIZER_TOOLS:
        # memcheck watches every kernel; the shared-memory and barrier checks only ours. API errors are not
        # reported: PyTorch's probing calls that fail by design would count as errors (our launches are checked)
        only_ours = [] if tool == 'memcheck' else [arg for name in OUR_KERNELS for arg in ('--kernel-name', name)]
        result.append(Step(f'compute-sanitizer {tool}', [
            'compute-sanitizer', '--tool', tool, *only_ours, '--report-api-errors', 'no', '--error-exitcode', '1',
            *python, '-m', 'pytest',
            *SANITIZER_CASES, '-q', '-p', 'no:cacheprovider'], 120, 30,
            dict(PYTORCH_NO_CUDA_MEMORY_CACHING='1')))  # the caching allocator would hide out-of-bounds accesses
    result.append(Step('copy bandwidth', _report_check('copy-bandwidth', out), 30, 5, result='copy-bandwidth.json'))
    for dtype in ('float32', 'bfloat16'):
        result.append(Step(f'scan benchmark {dtype}', [*python, 'tools/benchmark_scan.py', '--device', 'cuda',
                                                       '--dtype', dtype, '--shapes', 'cls', 'det'], 90, 20))
    with_official = ['--official-scratch', scratch] if official else []
    result += [
        Step('classifier benchmark', [*python, 'tools/benchmark.py', 'classify', 'tiny', *CLASSIFY_PROTOCOL,
                                      '--peers', *PEERS, '--peer-source', 'torchvision', *with_official,
                                      '--out', str(out / 'classify.json')], 180, 45, result='classify.json'),
        Step('detection backbone step', [*python, 'tools/benchmark.py', 'backbone', '--amp',
                                         'fp16', '--out', str(out / 'backbone.json')], 120, 30,
             result='backbone.json'),
        Step('classifier benchmark, torch.compile', [
            *python, 'tools/benchmark.py', 'classify', 'tiny', *CLASSIFY_PROTOCOL, '--peers', *PEERS,
            '--peer-source', 'torchvision', *with_official, '--compile', '--out', str(out / 'classify-compile.json')],
            300, 90, result='classify-compile.json')]
    return result


def list_steps(out: Path, official: Optional[str] = None, fixture: Path = FIXTURE) -> str:
    """One line per step: its name, timeout and command (the environment it adds first)."""
    lines = []
    for i, step in enumerate(steps(out, official=official, fixture=fixture), 1):
        env = ' '.join(f'{k}={v}' for k, v in step.env.items())
        lines.append(f'{i:2d}. {step.name} (timeout {step.timeout} s): {env + " " if env else ""}'
                     f'{shlex.join(step.command)}')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------------------------
# Preparation: everything that needs no CUDA device

def prepare(out: Path, official: Optional[str] = None, fixture: Path = FIXTURE) -> List[str]:
    """Check and load what the steps need, without a CUDA device; returns what was done (one line each).

    Raises ValueError for a missing fixture or clone, ImportError when a step's code cannot be imported."""
    import torch
    done = []
    if not Path(fixture).is_file():
        raise ValueError(f'--fixture {fixture}: no such file (the official equivalence fixture)')
    data = torch.load(fixture, weights_only=True)
    done.append(f'fixture {fixture}: logits {tuple(data["logits"].shape)}')
    if official:
        from .official import prepare as prepare_official
        scratch = prepare_official(official, out / 'official_scratch')
        done.append(f'official scratch copy in {scratch} (reverse_scan.cuh patched for CUDA 13)')
    from . import backbone_step, gpu_checks, official  # noqa: F401  (what the steps import when they run)
    from ..ops import check  # noqa: F401
    for script in ('tools/benchmark.py', 'tools/benchmark_scan.py'):
        runpy.run_path(str(ROOT / script), run_name='gpu_report_prepare')  # its imports, not its main()
        done.append(f'imported {script}')
    collected = subprocess.run([*_python(), '-m', 'pytest', '--collect-only', '-q', '-p', 'no:cacheprovider',
                                'tests/ops', '-k', 'cuda and not emulated'], cwd=ROOT, capture_output=True,
                               text=True)
    ids = {line.strip() for line in collected.stdout.splitlines() if '::' in line}
    missing = [case for case in SANITIZER_CASES if case not in ids]
    if collected.returncode != 0 or missing:
        raise ValueError(f'collecting the CUDA cases of tests/ops failed or lacks {missing}:\n'
                         + collected.stdout[-2000:] + collected.stderr[-2000:])
    done.append(f'collected {len(ids)} CUDA cases of tests/ops, the sanitizer selection among them')
    return done


# ------------------------------------------------------------------------------------------------------------------
# Running the steps

def _start(step: Step, log: Path) -> subprocess.Popen:
    """The step in its own process group (so that a timeout kills its children too), its output going to ``log``."""
    env = dict(os.environ, **step.env)
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])  # the tools
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'w') as output:
        return subprocess.Popen(step.command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)


def _wait(proc: subprocess.Popen, log: Path, deadline: float) -> tuple:
    """(return code, or None when killed at ``deadline``; the output), echoing the output as it comes."""
    shown = 0
    while True:
        code = proc.poll()
        text = log.read_text(errors='replace')
        print(''.join(f'    {line}\n' for line in text[shown:].splitlines()), end='', flush=True)
        shown = len(text)
        if code is not None:
            return code, text
        if time.monotonic() >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)  # the step and its children (compute-sanitizer's target, nvcc)
            proc.wait()
            return None, log.read_text(errors='replace')
        time.sleep(0.5)


def _run(step: Step, timeout: float, log: Path) -> tuple:
    return _wait(_start(step, log), log, time.monotonic() + timeout)


def sanitizer_summary(output: str) -> Optional[str]:
    """The first non-zero 'ERROR SUMMARY' / 'RACECHECK SUMMARY' line of compute-sanitizer's output, else None."""
    for line in output.splitlines():
        match = re.search(r'(ERROR|RACECHECK) SUMMARY: (\d+)', line)
        if match and int(match.group(2)):
            return line.strip()
    return None


def _status(step: Step, code: Optional[int], output: str) -> str:
    if code is None:
        return f'TIMEOUT ({step.timeout} s or the budget)'
    if step.name.startswith('compute-sanitizer'):
        hazard = sanitizer_summary(output)
        if hazard or code:
            return f'FAILED ({hazard or f"exit {code}"})'
        if 'SUMMARY' not in output:
            return 'FAILED (no sanitizer summary in the output)'
    return 'ok' if code == 0 else f'FAILED (exit {code})'


def _write(report: dict, folder: Path):
    (folder / 'gpu_report.json').write_text(json.dumps(report, indent=1) + '\n')
    (folder / 'gpu_report.md').write_text(to_markdown(report))


def gpu_report(out: str, skip_build: bool = False, official: Optional[str] = None, fixture: Path = FIXTURE,
               budget: float = DEFAULT_BUDGET, only: Optional[List[str]] = None) -> int:
    """Prepare, then run the steps within ``budget`` seconds, printing progress and writing
    OUT/gpu_report.{json,md} after each; 0 if every step ran and passed, else 1."""
    import torch
    start = time.monotonic()
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    report = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, cuda=torch.version.cuda,
                  official=official, budget_s=budget, steps=[], results={})
    for line in prepare(folder, official, fixture):
        print(f'[gpu_report] prepared: {line}', flush=True)
    chosen = [step for step in steps(folder, torch.cuda.get_device_capability(), official, fixture)
              if not (skip_build and step.name == 'build') and not (only and step.name not in only)]
    run_steps(chosen, folder, report, start + budget)
    print(f'[gpu_report] wrote {folder / "gpu_report.json"} and {folder / "gpu_report.md"} '
          f'in {time.monotonic() - start:.0f} s', flush=True)
    return 0 if all(s['status'] == 'ok' for s in report['steps']) else 1


def run_steps(chosen: List[Step], folder: Path, report: dict, deadline: float):
    """Run ``chosen`` in order until the monotonic ``deadline``, appending an entry per step to
    ``report['steps']`` (and the JSON a step wrote to ``report['results']``) and rewriting the report files after
    each; a step whose minimum no longer fits is skipped, one still running at its timeout or the deadline is
    killed. Each step's output is kept in ``folder/logs``."""
    logs = {step.name: folder / 'logs' / f'{i:02d}.log' for i, step in enumerate(chosen, 1)}
    # the official kernel compiles while our op builds: both are CPU work, and the budget is wall time
    started = {step.name: (_start(step, logs[step.name]), time.monotonic()) for step in chosen if step.background}
    for step in chosen:
        left = deadline - time.monotonic()
        entry = dict(name=step.name, command=shlex.join(step.command), seconds=0.0, output='')
        if left < step.minimum and step.name not in started:
            entry['status'] = f'skipped ({left:.0f} s of the budget left, needs {step.minimum} s)'
        else:
            print(f'[gpu_report] {step.name} (timeout {min(step.timeout, left):.0f} s'
                  f'{", started with the report" if step.background else ""}): {entry["command"]}', flush=True)
            began = time.monotonic()
            proc, since = started.get(step.name) or (_start(step, logs[step.name]), began)
            code, output = _wait(proc, logs[step.name], min(since + step.timeout, deadline))
            entry.update(seconds=round(time.monotonic() - began, 1), status=_status(step, code, output),
                         output=output if step.name.startswith('scan benchmark') else output[-6000:])
            if step.result and (folder / step.result).is_file():
                report['results'][step.name] = json.loads((folder / step.result).read_text())
        print(f'[gpu_report] {step.name}: {entry["status"]} in {entry["seconds"]:.0f} s', flush=True)
        report['steps'].append(entry)
        _write(report, folder)


# ------------------------------------------------------------------------------------------------------------------
# The checks the steps run in their own processes (tools/gpu_report.py --check NAME)

def copy_bandwidth(gigabytes: float = 4.0, repeat: int = 10) -> dict:
    """Device-to-device copy of a ``gigabytes`` buffer: GB/s counting bytes read and written (median of runs)."""
    import torch

    from ..timing import time_runs
    source = torch.empty(int(gigabytes * 1e9) // 4, dtype=torch.float32, device='cuda')
    target = torch.empty_like(source)
    seconds = statistics.median(time_runs(lambda: target.copy_(source), repeat, warmup=1, device='cuda')[0])
    return dict(gb_per_s=2 * source.numel() * 4 / seconds / 1e9, bytes=source.numel() * 4, seconds=seconds)


def run_check(name: str, fixture: Path = FIXTURE, official: Optional[str] = None, out: Optional[Path] = None):
    """One check of :data:`CHECKS`; returns its figures (AssertionError / RuntimeError when it fails)."""
    from . import gpu_checks
    if name == 'fixture':
        return gpu_checks.fixture_equivalence(str(fixture))
    if name == 'cuda-vs-cpu':
        return gpu_checks.cuda_vs_cpu()
    if name == 'amp':
        return {dtype: gpu_checks.amp_training(dtype) for dtype in ('float16', 'bfloat16')}
    if name == 'copy-bandwidth':
        return copy_bandwidth()
    if name == 'build-official':
        import torch
        from .official import build_kernel, prepare as prepare_official
        scratch = prepare_official(official, out / 'official_scratch')
        began = time.monotonic()
        module = build_kernel(scratch, torch.cuda.get_device_capability())
        return dict(module=module.__file__, build_s=time.monotonic() - began)
    raise ValueError(f'unknown check {name!r}; one of {CHECKS}')


# ------------------------------------------------------------------------------------------------------------------
# Markdown

def _scan_tables(report: dict) -> List[str]:
    """The scan benchmark tables, with each row's bandwidth as a percentage of the copy bandwidth of the run."""
    copy = report['results'].get('copy bandwidth', {}).get('gb_per_s')
    lines = []
    if copy:
        lines += ['', f'Device-to-device copy, measured in this run: {copy:.0f} GB/s (bytes read + written).']
    for step in report['steps']:
        if not step['name'].startswith('scan benchmark'):
            continue
        lines.append('')
        for line in step['output'].splitlines():
            if line.startswith('#'):
                lines.append(line)
            elif line.startswith('| shape'):
                lines.append(line + ' % of copy |')
            elif line.startswith('| ---'):
                lines.append(line + ' --- |')
            elif line.startswith('|') and copy:
                gb_s = float(line.strip('|').split('|')[6])
                lines.append(line + f' {100 * gb_s / copy:.0f} |')
    return lines


def _classify_rows(results: dict, compiled: bool) -> List[str]:
    official = {row['mode']: row for row in results['results'] if row.get('source') == 'official'}
    lines = []
    for row in results['results']:
        match = official.get(row['mode'])
        ratio = (f"{row['img_s'] / match['img_s']:.2f}x / {row['peak_MB'] / match['peak_MB']:.2f}x"
                 if match and row is not match else '')
        lines.append(f"| {row['model']} | {row['mode']} | {'yes' if compiled else 'no'} | {row['bs']} | "
                     f"{row['img_s']:.1f} | {row['peak_MB']:.0f} | {ratio} |")
    return lines


def to_markdown(report: dict) -> str:
    """The report's tables in the form docs/benchmarks.md uses."""
    lines = [f"# GPU report: {report['device']}, torch {report['torch']}, CUDA {report['cuda']}", '',
             '| step | status | seconds |', '| --- | --- | --- |']
    lines += [f"| {s['name']} | {s['status']} | {s['seconds']:.0f} |" for s in report['steps']]
    results = report.get('results', {})
    if 'fixture on CUDA (fp32, TF32 off)' in results:
        worst = max(results['fixture on CUDA (fp32, TF32 off)'].values())
        lines += ['', f'Official fixture on CUDA, float32, TF32 off: max abs error {worst:.2e} (tolerance 1e-4).']
    if 'MSVMamba-T CUDA vs CPU kernels' in results:
        r = results['MSVMamba-T CUDA vs CPU kernels']
        lines.append(f"MSVMamba-T CUDA vs CPU kernels: logits max abs {r['logits']:.2e}, worst of {r['n_grads']} "
                     f"gradients {r['worst_grad']} {r['worst_grad_rel']:.2e} of its scale.")
    for dtype, r in results.get('AMP fp16 / bf16 training', {}).items():
        lines.append(f"AMP {dtype} training, {r['steps']} steps on one batch: loss {r['first_loss']:.3f} -> "
                     f"{r['last_loss']:.3f}.")
    lines += _scan_tables(report)
    tables = [(results.get(name), compiled) for name, compiled in (
        ('classifier benchmark', False), ('classifier benchmark, torch.compile', True))]
    if any(t for t, _ in tables):
        lines += ['', '| model | mode | torch.compile | bs | img/s | peak MB | ours / official (img/s, peak) |',
                  '| --- | --- | --- | --- | --- | --- | --- |']
        for table, compiled in tables:
            lines += _classify_rows(table, compiled) if table else []
    if results.get('detection backbone step'):
        lines += ['', '| backbone (2x3x800x1333, AMP fp16, fwd+bwd) | ms / step | peak MB |', '| --- | --- | --- |']
        lines += [f"| {row['model']} | {row['ms']:.1f} | {row['peak_MB']:.0f} |"
                  for row in results['detection backbone step']['results']]
    return '\n'.join(lines) + '\n'
