"""Everything owed to a machine with a CUDA device, as one report (``tools/gpu_report.py``, ``make gpu-report``).

Steps, each printed as it starts and timed, each in a fresh process (the op is rebuilt by the first one): build
the op for this GPU (``setup.py build_ext --inplace`` with ``MMMSVMAMBA_WITH_CUDA=1``, the emulated device, and
``TORCH_CUDA_ARCH_LIST`` set to the device's compute capability), the compiled op against the reference
(``python -m mmmsvmamba.ops.check --require-cuda``), the op tests (``pytest tests/ops``, where the
CUDA-parametrised cases run), the scan benchmark (``tools/benchmark_scan.py``, float32 and bfloat16, classification and detection shapes) and the classifier
benchmark under the anchors' protocol (``tools/benchmark.py classify``: AMP fp16, batch 128, 224x224, MSVMamba-T
and the peers from torchvision, inference and training). Writes ``OUT/gpu_report.json`` (every step's status,
time and output; the classifier results) and ``OUT/gpu_report.md`` (tables ready for docs/benchmarks.md) after
each step, so a run cut short keeps what it did. About 6 minutes on an H100, most of it the build.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the build, the tests and the tools run from it


def _steps(out: Path, capability) -> list:
    """(name, command, extra environment) of each step."""
    python = sys.executable
    # the emulated device too, so that the CUDA kernels' real and emulated results run side by side in tests/ops
    build_env = dict(MMMSVMAMBA_WITH_CUDA='1', MMMSVMAMBA_WITH_EMULATED='1',
                     TORCH_CUDA_ARCH_LIST='{}.{}'.format(*capability))
    steps = [('build', [python, 'setup.py', 'build_ext', '--inplace'], build_env),
             ('ops.check --require-cuda', [python, '-m', 'mmmsvmamba.ops.check', '--require-cuda'], {}),
             ('pytest tests/ops', [python, '-m', 'pytest', 'tests/ops', '-q', '-x', '-rs', '-p', 'no:cacheprovider'],
              {})]
    for dtype in ('float32', 'bfloat16'):
        steps.append((f'scan benchmark {dtype}', [python, 'tools/benchmark_scan.py', '--device', 'cuda', '--dtype',
                                                  dtype, '--shapes', 'cls', 'det'], {}))
    steps.append(('classifier benchmark', [python, 'tools/benchmark.py', 'classify', 'tiny', '--device', 'cuda',
                                           '--amp', 'fp16', '--peer-source', 'torchvision', '--out',
                                           str(out / 'classify.json')], {}))
    return steps


def to_markdown(report: dict) -> str:
    """The report's tables in the form docs/benchmarks.md uses: steps, the scan tables, the classifier rows."""
    lines = [f"# GPU report: {report['device']}, torch {report['torch']}, CUDA {report['cuda']}", '',
             '| step | status | seconds |', '| --- | --- | --- |']
    lines += [f"| {s['name']} | {s['status']} | {s['seconds']:.0f} |" for s in report['steps']]
    for step in report['steps']:
        if step['name'].startswith('scan benchmark'):
            lines += [''] + [line for line in step['output'].splitlines() if line.startswith(('#', '|'))]
    if report.get('classify'):
        lines += ['', '| model | mode | bs | img/s | peak MB | official H100 img/s (ours / official) |',
                  '| --- | --- | --- | --- | --- | --- |']
        for row in report['classify']['results']:
            anchor = row.get('official_h100')
            official = f"{anchor['img_s']} ({anchor['img_s_ratio']:.2f}x)" if anchor else ''
            lines.append(f"| {row['model']} | {row['mode']} | {row['bs']} | {row['img_s']:.1f} | "
                         f"{row['peak_MB']:.0f} | {official} |")
    return '\n'.join(lines) + '\n'


def gpu_report(out: str, skip_build: bool = False) -> int:
    """Run the steps, printing progress, and write OUT/gpu_report.{json,md} after each; 0 if all passed, else 1."""
    import torch
    report = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, cuda=torch.version.cuda, steps=[])
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for name, command, env in _steps(folder, torch.cuda.get_device_capability()):
        if skip_build and name == 'build':
            continue
        print(f'[gpu_report] {name}: {" ".join(command)}', flush=True)
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=dict(os.environ, **env), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        status = 'ok' if proc.returncode == 0 else f'FAILED ({proc.returncode})'
        output = proc.stdout if name.startswith('scan') else '\n'.join((proc.stdout + proc.stderr).splitlines()[-40:])
        report['steps'].append(dict(name=name, status=status, seconds=round(seconds, 1), output=output))
        print(f'[gpu_report] {name}: {status} in {seconds:.0f} s', flush=True)
        if proc.returncode != 0:
            print(output, flush=True)
        if name == 'classifier benchmark' and proc.returncode == 0:
            report['classify'] = json.loads((folder / 'classify.json').read_text())
        (folder / 'gpu_report.json').write_text(json.dumps(report, indent=1) + '\n')
        (folder / 'gpu_report.md').write_text(to_markdown(report))
    print(f'[gpu_report] wrote {folder / "gpu_report.json"} and {folder / "gpu_report.md"}')
    return 0 if all(s['status'] == 'ok' for s in report['steps']) else 1
