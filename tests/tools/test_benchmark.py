"""tools/benchmark.py on CPU at tiny sizes: the JSON it emits (the anchor file's fields, environment, protocol,
peer ratios, scaling summary), isolation, plots and errors. No timing is asserted."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FACTS = json.loads((ROOT / 'tests' / 'data' / 'official' / 'official_facts.json').read_text())['variants']
if str(ROOT / 'tools') not in sys.path:  # benchmark.py imports get_flops as its sibling, as when run as a script
    sys.path.insert(0, str(ROOT / 'tools'))
import benchmark  # noqa: E402

ANCHOR_FIELDS = ('model', 'mode', 'bs', 'res', 'params_M', 'img_s', 'peak_MB')  # official_msvmamba_h100.json
# one thread: the test machine's cores are often busy, and two contending OpenMP threads are slower than one
FAST = ['--device', 'cpu', '--res', '32', '--bs', '2', '--warmup', '0', '--runs', '2', '--iters', '1', '--threads', '1']
HAS_PEER = importlib.util.find_spec('mmpretrain') is not None or importlib.util.find_spec('torchvision') is not None


def run_json(argv, path):
    benchmark.main(argv + ['--out', str(path)])
    return json.loads(Path(path).read_text())


@pytest.fixture(scope='module')
def classify_file(tmp_path_factory):
    """One classify run (ours + one peer, both modes) that several tests read."""
    if not HAS_PEER:
        pytest.skip('peers need mmpretrain or torchvision')
    path = tmp_path_factory.mktemp('bench') / 'classify.json'
    benchmark.main(['classify', 'nano', '--peers', 'resnet50', '--no-isolate', '--out', str(path)] + FAST)
    return path


@pytest.fixture(scope='module')
def scaling_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('bench') / 'scaling.json'
    benchmark.main(['scaling', 'nano', '--peers', '--sizes', '32', '48x64', '--no-isolate', '--out', str(path)]
                   + FAST)
    return path


def test_classify_cpu_json_has_anchor_fields_env_and_peer_ratios(classify_file):
    output = json.loads(classify_file.read_text())
    assert output['command'] == 'classify'
    rows = {(row['model'], row['mode']): row for row in output['results']}
    assert set(rows) == {('nano', 'infer_fp32'), ('nano', 'train_fp32'), ('resnet50', 'infer_fp32'),
                         ('resnet50', 'train_fp32')}
    for row in rows.values():
        for key in ANCHOR_FIELDS:
            assert key in row
        assert row['bs'] == 2 and row['res'] == 32
        assert row['img_s'] > 0 and len(row['runs_img_s']) == 2
        assert row['img_per_cpu_s'] > 0 and 0 < row['cpu_utilisation'] and len(row['runs_img_per_cpu_s']) == 2
    assert rows[('nano', 'infer_fp32')]['params_M'] * 1e6 == pytest.approx(FACTS['v1_nano']['params_cls_model'])
    assert rows[('resnet50', 'infer_fp32')]['params_M'] == pytest.approx(25.557032)

    env = output['env']
    for key in ('device', 'torch', 'cuda', 'cudnn', 'threads', 'scan_backend', 'tf32_matmul', 'tf32_cudnn',
                'cudnn_benchmark', 'load_avg_start', 'load_avg_end'):
        assert key in env
    assert env['device_type'] == 'cpu' and env['threads'] == 1 and env['packages']['mmmsvmamba']
    assert output['protocol']['amp'] == 'none' and output['protocol']['runs'] == 2

    ratios = {(r['model'], r['mode'], r['peer']): r for r in output['ratios']}
    assert set(ratios) == {('nano', 'infer_fp32', 'resnet50'), ('nano', 'train_fp32', 'resnet50')}
    ratio = ratios[('nano', 'infer_fp32', 'resnet50')]
    assert ratio['img_s_ratio'] == pytest.approx(rows[('nano', 'infer_fp32')]['img_s']
                                                 / rows[('resnet50', 'infer_fp32')]['img_s'])


def test_json_on_stdout_matches_the_file_and_settings_are_restored(capsys, tmp_path):
    threads = benchmark.torch.get_num_threads()
    benchmark.main(['scaling', 'nano', '--peers', '--sizes', '32', '--no-isolate', '--json',
                    '--out', str(tmp_path / 'out.json')] + FAST)
    assert json.loads(capsys.readouterr().out) == json.loads((tmp_path / 'out.json').read_text())
    assert benchmark.torch.get_num_threads() == threads


def test_isolated_cpu_measurement_reports_its_own_peak_memory(tmp_path):
    """The default on CPU: a fresh process per measurement, whose peak resident set is the figure."""
    output = run_json(['classify', 'nano', '--peers', '--modes', 'train'] + FAST, tmp_path / 'isolated.json')
    (row, ) = output['results']
    assert output['protocol']['isolate'] is True
    # weights + gradients + two AdamW moments alone are 4 x 6.9M float32 = 105 MB
    assert row['peak_MB'] > 4 * row['params_M'] * 4 * 0.9


def test_scaling_reports_time_per_image_for_each_size(scaling_file):
    output = json.loads(scaling_file.read_text())
    assert [row['res'] for row in output['results']] == [32, '48x64']
    assert all(row['mode'] == 'infer_fp32' for row in output['results'])
    summary = output['scaling']['nano']
    assert set(summary['ms_per_img']) == set(summary['cpu_ms_per_img']) == {'32', '48x64'}
    assert summary['ms_per_img']['32'] == output['results'][0]['ms_per_img']


@pytest.mark.skipif(importlib.util.find_spec('matplotlib') is None, reason='plots need matplotlib')
def test_plot_from_results(classify_file, scaling_file, capsys, tmp_path):
    benchmark.main(['plot', str(classify_file), str(scaling_file), '--out-dir', str(tmp_path), '--tag', 'test'])
    written = capsys.readouterr().out.split()
    assert [Path(p).name for p in written] == ['benchmark_accuracy_vs_throughput_test.png',
                                               'benchmark_latency_vs_resolution_test.png']
    assert all(Path(p).read_bytes()[:4] == b'\x89PNG' for p in written)


@pytest.mark.parametrize('config, mode, library', [
    ('mask_rcnn_msvmamba_n_1x.py', 'train', 'mmdet'),
    # (segmentation training pads every image to the 512x512 crop: too slow for a unit test on CPU)
    ('upernet_msvmamba_n_160k_ade20k.py', 'infer', 'mmseg'),
])
def test_config_runs_test_or_train_step_on_synthetic_data(config, mode, library, tmp_path):
    if not (ROOT / 'configs' / config).is_file() or importlib.util.find_spec(library) is None:
        pytest.skip(f'needs configs/{config} and {library}')
    output = run_json(['config', str(ROOT / 'configs' / config), '--modes', mode, '--infer-shape', '64', '96',
                       '--train-shape', '32', '32', '--no-isolate', '--device', 'cpu', '--warmup', '0', '--runs', '1',
                       '--threads', '1'], tmp_path / 'config.json')
    (row, ) = output['results']
    assert row['model'] == config[:-3] and row['mode'] == f'{mode}_fp32' and row['source'] == library
    assert row['res'] == ('64x96' if mode == 'infer' else 32)
    assert row['bs'] == (1 if mode == 'infer' else 2)  # test batch 1; the config's training batch
    assert row['img_s'] > 0 and row['params_M'] > 25


@pytest.mark.parametrize('argv, message', [
    (['classify', 'tiny_v9', '--peers'], 'unknown model'),
    (['classify', 'nano', '--peers', 'vit-b'], 'unknown model'),
    (['scaling', 'nano', '--peers', '--sizes', '0x32'], 'positive ints'),
    (['config', 'configs/no_such_config.py'], 'config file not found'),
])
def test_errors_name_the_problem(argv, message):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(argv + FAST + ['--no-isolate'])
    assert message in str(exit_info.value)


@pytest.mark.skipif(benchmark.torch.cuda.is_available(), reason='checks the message on a machine without CUDA')
def test_cuda_request_without_cuda_is_an_error():
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(['classify', 'nano', '--peers', '--device', 'cuda'])
    assert 'no CUDA device' in str(exit_info.value)
