"""mmmsvmamba.analysis.benchmark on CPU at tiny sizes: protocol defaults, step counts, what a measurement row
holds (the measured model really is the arch asked for), per-process peak memory, restoring settings, peer
ratios and the H100-anchor rule, scaling summaries, config steps, plots. No timing is asserted."""
import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mmmsvmamba.analysis import benchmark as bench
from mmmsvmamba.timing import time_runs
from tests.official import facts

ROOT = Path(__file__).resolve().parents[2]
HAS_PEER = importlib.util.find_spec('mmpretrain') is not None or importlib.util.find_spec('torchvision') is not None


def tiny_protocol(**changes):
    """One thread (the test machine's cores are often busy), 32x32, batch 2, two runs of one step."""
    protocol = bench.make_protocol('classify', 'cpu', bs=2, res=32, warmup=0, runs=2, iters=1, threads=1,
                                   isolate=False)
    return replace(protocol, **changes)


def test_cpu_protocol_defaults():
    protocol = bench.make_protocol('classify', 'cpu')
    assert (protocol.bs, protocol.amp, protocol.warmup, protocol.runs, protocol.iters, protocol.isolate) == \
        (8, 'none', 1, 3, 1, True)
    assert bench.make_protocol('scaling', 'cpu').bs == 1 and protocol.precision == 'fp32'
    assert replace(protocol, amp='fp16').precision == 'amp_fp16'


@pytest.mark.parametrize('changes, message', [(dict(bs=0), 'must be positive'), (dict(warmup=-1), 'non-negative'),
                                              (dict(amp='fp8'), 'amp must be one of')])
def test_impossible_protocols_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        bench.make_protocol('classify', 'cpu', **changes)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message on a machine without CUDA')
def test_cuda_request_without_cuda_is_an_error():
    with pytest.raises(ValueError, match='no CUDA device'):
        bench.make_protocol('classify', 'cuda')


def test_time_runs_runs_warmup_then_timed_runs():
    calls = []
    wall, cpu = time_runs(lambda: calls.append(1), runs=4, iters=5, warmup=3, device=torch.device('cpu'))
    assert len(calls) == 3 + 4 * 5 and len(wall) == len(cpu) == 4


def test_time_runs_measures_the_clock_it_is_given():
    ticks = iter(range(100))
    _, cpu = time_runs(lambda: None, runs=3, iters=2, cpu_clock=lambda: next(ticks) * 0.5)
    assert cpu == [0.5, 0.5, 0.5]


@pytest.mark.parametrize('mode', bench.MODES)
def test_measured_row_describes_the_arch_that_ran(mode):
    row = bench.measure(bench.Case('classifier', 'n', mode, tiny_protocol(), (32, 48)))
    assert row['params_M'] * 1e6 == pytest.approx(facts('nano')['params_cls_model'])
    assert (row['step'], row['precision'], row['mode']) == (mode, 'fp32', f'{mode}_fp32')
    assert row['res'] == '32x48' and row['bs'] == 2 and len(row['runs_img_s']) == 2
    assert row['img_s'] * row['ms_per_img'] == pytest.approx(1e3)
    assert 0 < row['cpu_utilisation'] and row['img_per_cpu_s'] > 0
    assert row['peak_MB'] is None  # not isolated: the process peak would include other measurements


def test_isolated_measurement_reports_its_own_peak_memory():
    """The CPU default: a fresh process per measurement, whose peak resident set is the figure."""
    row = bench.run_case(bench.Case('classifier', 'nano', 'train', tiny_protocol(isolate=True), (32, 32)))
    # weights + gradients + two AdamW moments alone are 4 x 6.9M float32 = 105 MB
    assert row['peak_MB'] > 4 * row['params_M'] * 4 * 0.9


def test_isolated_peak_is_the_measurement_not_the_parent():
    """A child's getrusage peak starts at its parent's size at the fork: 1.2 GB in the parent must not show in it
    (a nano inference at 32x32 peaks at about 300 MB above its start, the imports of mmpretrain included)."""
    ballast = torch.ones(300 * 2**20)  # 1.2 GB, resident (written)
    row = bench.run_case(bench.Case('classifier', 'nano', 'infer', tiny_protocol(isolate=True), (32, 32)))
    assert 0 < row['peak_MB'] < 600, row['peak_MB']
    del ballast


def test_settings_are_restored_after_a_measurement():
    threads = torch.get_num_threads()
    bench.measure(bench.Case('classifier', 'nano', 'infer', tiny_protocol(threads=threads + 1), (32, 32)))
    assert torch.get_num_threads() == threads


def _row(model, step, precision='fp32', img_s=10.0, peak=100.0, bs=8, res=224, runtime='pytorch'):
    return dict(model=model, step=step, precision=precision, mode=f'{step}_{precision}', img_s=img_s, peak_MB=peak,
                bs=bs, res=res, runtime=runtime)


def test_peer_ratios_pair_each_of_ours_with_each_peer_in_the_same_mode():
    rows = [_row('nano', 'infer', img_s=30), _row('nano', 'train', img_s=6), _row('resnet50', 'infer', img_s=10),
            _row('resnet50', 'train', img_s=3, peak=None)]
    ratios = {(r['model'], r['peer'], r['mode']): r for r in bench.peer_ratios(rows, ['nano'], ['resnet50'])}
    assert set(ratios) == {('nano', 'resnet50', 'infer_fp32'), ('nano', 'resnet50', 'train_fp32')}
    assert ratios[('nano', 'resnet50', 'infer_fp32')]['img_s_ratio'] == 3.0
    assert ratios[('nano', 'resnet50', 'train_fp32')]['peak_MB_ratio'] is None  # no peak, no ratio


def test_runtime_ratios_pair_onnxruntime_with_pytorch_of_the_same_model():
    rows = [_row('nano', 'infer', img_s=30), _row('nano', 'infer', img_s=45, runtime='onnxruntime'),
            _row('tiny', 'infer', img_s=9), _row('resnet50', 'infer', img_s=10)]
    assert bench.runtime_ratios(rows, ['nano', 'tiny']) == [dict(model='nano', mode='infer_fp32', bs=8,
                                                                 img_s_ratio=1.5)]
    # an onnxruntime row is no peer comparison of its own
    assert [r['img_s_ratio'] for r in bench.peer_ratios(rows, ['nano'], ['resnet50'])] == [3.0]


def test_onnxruntime_runtime_times_the_exported_classifier():
    pytest.importorskip('onnxruntime', reason='the deploy extras are not installed (requirements/deploy.txt)')
    from mmmsvmamba.ops import compiled
    if not compiled.has_kernel('cpu'):
        pytest.skip('export needs the compiled CPU ops')
    protocol = tiny_protocol(res=96, runs=1)  # the export's smallest input is 68 (mmmsvmamba.deploy.MIN_SIZE)
    output = bench.benchmark_classifiers(['nano'], [], ['infer'], protocol, bench.environment(protocol),
                                         runtimes=('pytorch', 'onnxruntime'))
    torch_row, ort_row = output['results']
    assert (torch_row['runtime'], ort_row['runtime']) == ('pytorch', 'onnxruntime')
    assert ort_row['source'] == 'onnxruntime' and ort_row['export_s'] > 0 and ort_row['params_M'] is None
    assert (ort_row['bs'], ort_row['res'], ort_row['mode'], len(ort_row['runs_img_s'])) == (2, 96, 'infer_fp32', 1)
    (ratio, ) = output['runtime_ratios']
    assert ratio['img_s_ratio'] == pytest.approx(ort_row['img_s'] / torch_row['img_s'])
    with pytest.raises(ValueError, match='runtimes must be some of'):
        bench.benchmark_classifiers(['nano'], [], ['infer'], protocol, {}, runtimes=('tensorrt', ))
    with pytest.raises(ValueError, match='measures inference'):
        bench.benchmark_classifiers(['nano'], [], ['train'], protocol, {}, runtimes=('onnxruntime', ))


def test_h100_anchors_only_under_their_protocol():
    rows = [_row('tiny', 'infer', 'amp_fp16', img_s=4552.1, bs=128), _row('tiny', 'train', 'amp_fp16', bs=64),
            _row('tiny', 'infer', 'fp32', bs=128), _row('small', 'infer', 'amp_fp16', bs=128)]
    bench.add_h100_anchors(rows, 'NVIDIA H100 80GB HBM3')
    assert [('official_h100' in row) for row in rows] == [True, False, False, False]
    assert rows[0]['official_h100']['img_s_ratio'] == pytest.approx(2.0, rel=1e-4)
    other_gpu = [_row('tiny', 'infer', 'amp_fp16', bs=128)]
    bench.add_h100_anchors(other_gpu, 'NVIDIA A100-SXM4-80GB')
    assert 'official_h100' not in other_gpu[0]


def test_scaling_summary_per_model_and_size():
    output = bench.benchmark_scaling(['nano'], [(32, 32), (32, 48)], tiny_protocol(runs=1))
    assert [row['res'] for row in output['results']] == [32, '32x48']
    summary = output['scaling']['nano']
    assert set(summary['ms_per_img']) == set(summary['cpu_ms_per_img']) == {'32', '32x48'}
    assert 'ms_per_img_1024_over_512' not in summary  # only when both 512 and 1024 were measured


@pytest.mark.skipif(not HAS_PEER, reason='peers need mmpretrain or torchvision')
def test_classifier_benchmark_with_a_peer():
    protocol = tiny_protocol(runs=1)
    output = bench.benchmark_classifiers(['nano'], ['resnet50'], ['infer'], protocol,
                                         bench.environment(protocol))
    rows = {row['model']: row for row in output['results']}
    assert rows['resnet50']['params_M'] == pytest.approx(25.557032)  # torchvision's and mmpretrain's ResNet-50
    assert [(r['model'], r['peer']) for r in output['ratios']] == [('nano', 'resnet50')]


def test_environment_names_device_threads_and_scan_backend():
    env = bench.environment(tiny_protocol())
    assert env['device_type'] == 'cpu' and env['threads'] == torch.get_num_threads()
    from mmmsvmamba.ops import compiled
    assert env['scan_backend'] == ('compiled' if compiled.has_kernel('cpu') else 'torch')


@pytest.mark.parametrize('config, mode, library', [
    ('mask_rcnn_msvmamba_n_1x.py', 'train', 'mmdet'),
    # (segmentation training pads every image to the 512x512 crop: too slow for a unit test on CPU)
    ('upernet_msvmamba_n_160k_ade20k.py', 'infer', 'mmseg'),
])
def test_config_runs_test_or_train_step_on_synthetic_data(config, mode, library):
    if importlib.util.find_spec(library) is None:
        pytest.skip(f'needs {library}')
    shapes = dict(infer=(64, 96), train=(32, 32))
    output = bench.benchmark_configs([str(ROOT / 'configs' / config)], [mode], tiny_protocol(threads=1, runs=1),
                                     shapes)
    (row, ) = output['results']
    assert row['model'] == config[:-3] and row['mode'] == f'{mode}_fp32' and row['source'] == library
    assert row['res'] == ('64x96' if mode == 'infer' else 32)
    assert row['bs'] == (1 if mode == 'infer' else 2)  # test batch 1; the config's training batch


def test_a_classifier_config_is_refused():
    if importlib.util.find_spec('mmpretrain') is None:
        pytest.skip('needs mmpretrain')
    with pytest.raises(ValueError, match='use `classify` with its arch'):
        bench.benchmark_configs([str(ROOT / 'configs' / 'msvmamba_n_in1k.py')], ['infer'], tiny_protocol())
