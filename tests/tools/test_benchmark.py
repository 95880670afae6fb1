"""tools/benchmark.py as a command on CPU at tiny sizes: the JSON file and stdout agree, the plots are drawn from
them, and a user's mistakes are one line with exit status 2. The measurements are tested in
tests/analysis/test_benchmark.py; no timing is asserted."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = ['--device', 'cpu', '--res', '32', '--bs', '2', '--warmup', '0', '--runs', '1', '--iters', '1', '--threads', '1',
        '--no-isolate']


def benchmark(*args, check=True):
    return subprocess.run([sys.executable, 'tools/benchmark.py', *args], cwd=ROOT, capture_output=True, text=True,
                          check=check)


@pytest.fixture(scope='module')
def result_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bench')
    classify, scaling = folder / 'classify.json', folder / 'scaling.json'
    stdout = benchmark('classify', 'nano', '--peers', '--modes', 'infer', '--json', '--out', str(classify),
                       *FAST).stdout
    benchmark('scaling', 'nano', '--peers', '--sizes', '32', '32x48', '--out', str(scaling), *FAST)
    return classify, scaling, stdout


def test_json_on_stdout_is_the_file(result_files):
    classify, _, stdout = result_files
    output = json.loads(classify.read_text())
    assert json.loads(stdout) == output
    assert output['command'] == 'classify' and [row['mode'] for row in output['results']] == ['infer_fp32']
    assert output['protocol']['threads'] == 1 and output['env']['load_avg_end']


@pytest.mark.skipif(importlib.util.find_spec('matplotlib') is None, reason='plots need matplotlib')
def test_plot_from_results(result_files, tmp_path):
    classify, scaling, _ = result_files
    written = benchmark('plot', str(classify), str(scaling), '--out-dir', str(tmp_path), '--tag', 'test').stdout.split()
    assert [Path(p).name for p in written] == ['benchmark_accuracy_vs_throughput_test.png',
                                               'benchmark_latency_vs_resolution_test.png']
    assert all(Path(p).read_bytes()[:4] == b'\x89PNG' for p in written)


@pytest.mark.parametrize('argv, message', [
    (['classify', 'tiny_v9', '--peers'], 'unknown model'),
    (['classify', 'nano', '--peers', 'vit-b'], 'unknown model'),
    (['scaling', 'nano', '--peers', '--sizes', '0x32'], 'positive ints'),
    (['config', 'configs/no_such_config.py'], 'config file not found'),
    (['classify', 'nano', '--peers', '--official-scratch', 'scratch'], 'use --device cuda'),
])
def test_errors_name_the_problem(argv, message):
    result = benchmark(*argv, *FAST, check=False)
    assert result.returncode == 2 and result.stderr.count('\n') == 1, result.stderr
    assert result.stderr.startswith('benchmark.py: error: ') and message in result.stderr


def test_compile_times_the_compiled_model(tmp_path):
    """--compile: every row is measured under torch.compile and says so in its mode."""
    out = tmp_path / 'compiled.json'
    benchmark('classify', 'nano', '--peers', '--modes', 'infer', '--compile', '--out', str(out), *FAST)
    output = json.loads(out.read_text())
    assert output['protocol']['compile'] is True
    assert [(row['model'], row['mode']) for row in output['results']] == [('nano', 'infer_fp32_compile')]
    assert output['results'][0]['img_s'] > 0


@pytest.mark.skipif(__import__('torch').cuda.is_available(), reason='checks the refusal on a machine without CUDA')
def test_backbone_step_needs_cuda():
    result = benchmark('backbone', check=False)
    assert result.returncode == 2 and result.stderr.count('\n') == 1 and 'no CUDA device' in result.stderr
