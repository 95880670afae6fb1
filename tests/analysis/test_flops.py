"""mmmsvmamba.analysis.flops: the official fvcore GFLOPs of all six archs (total and per operator), the MS2D
route-copy term against an independent formula, hand-computed operator formulas, linear scaling, the scan
accounting's guard, and det/seg configs. The published figures are checked against tests/data/official, which
the code never reads."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from mmmsvmamba.analysis.flops import FlopCounter, flop_report, ms2d_scan_accounting
from mmmsvmamba.models import MSVMamba
from mmmsvmamba.ops import selective_scan_fn
from tests.official import ARCH_TO_FACTS, facts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def reports():
    """One count per arch at 224x224, shared by the tests below."""
    return {arch: flop_report(arch) for arch in ARCH_TO_FACTS}


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_official_gflops_within_one_percent(reports, arch):
    report, official = reports[arch], facts(arch)
    assert report['params'] == official['params_cls_model']
    assert report['flops'] / 1e9 == pytest.approx(official['gflops_224'], rel=0.01)
    # the published figure the report quotes is the official count, and its difference is ours against it
    assert report['official']['gflops'] == pytest.approx(official['gflops_224'], rel=1e-5)
    assert report['official']['diff_pct'] == pytest.approx(
        100 * (report['flops'] / 1e9 - official['gflops_224']) / official['gflops_224'], abs=1e-3)


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_each_official_operator_group_within_one_percent(reports, arch):
    """Per-operator agreement, so that two errors cannot cancel in the total."""
    ours = reports[arch]['flops_by_official_op']
    official = facts(arch)['gflops_224_by_op']
    assert set(ours) == set(official)
    for op, gflops in official.items():
        assert ours[op] / 1e9 == pytest.approx(gflops, rel=0.01), op


@pytest.mark.parametrize('training', [False, True])
def test_operator_formulas_are_fvcores(training):
    """Hand-computed counts for each formula, on a (2, 3, 10, 10) input."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.GroupNorm(2, 8),
                          nn.ConvTranspose2d(8, 4, 2, stride=2), nn.Upsample(scale_factor=0.5, mode='bilinear'),
                          nn.Upsample(scale_factor=2, mode='nearest'), nn.LayerNorm(16), nn.AdaptiveAvgPool2d(3),
                          nn.Flatten(), nn.Linear(36, 5, bias=False))
    model.train(training)
    counter = FlopCounter()
    with counter.track(model):
        model(torch.randn(2, 3, 10, 10))
        torch.randn(2, 3, 4) @ torch.randn(2, 4, 6)
    assert dict(counter.by_module['']) == {
        'conv': 2 * 8 * 3 * 3 * 3 * 8 * 8 + 2 * 8 * 4 * 2 * 2 * 8 * 8,  # out pixels; transposed: input pixels
        'batch_norm': 2 * 8 * 8 * 8 * (5 if training else 2),  # with affine
        'group_norm': 2 * 8 * 8 * 8 * 5,
        'upsample_bilinear2d': 2 * 4 * 8 * 8 * 4,  # per output element
        'upsample_nearest2d': 2 * 4 * 16 * 16,
        'layer_norm': 2 * 4 * 16 * 16 * 5,
        'adaptive_avg_pool2d': 2 * 4 * 16 * 16,  # per input element
        'linear': 2 * 36 * 5,
        'matmul': 2 * 3 * 4 * 6,
    }
    assert counter.by_module['0']['conv'] == 2 * 8 * 3 * 3 * 3 * 8 * 8


def expected_route_copies(arch: str, size: int = 224) -> int:
    """2 extra route sequences x Hb*Wb positions x (x_proj + dt_proj MACs), summed over all blocks."""
    arch_cfg = MSVMamba.parse_arch(arch)
    # v1's 4x4 stem floors, v3's two stride-2 convs ceil; every later halving ceils (docs/architecture.md)
    side = size // 4 if arch_cfg['version'] == 'v1' else math.ceil(math.ceil(size / 2) / 2)
    total = 0
    for channels, depth in zip(arch_cfg['dims'], arch_cfg['depths']):
        inner, rank = int(arch_cfg['ssm_ratio'] * channels), math.ceil(channels / 16)
        half = math.ceil(side / 2)
        total += depth * 2 * half * half * (inner * (rank + 2) + inner * rank)
        side = math.ceil(side / 2)
    return total


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_real_flops_differ_by_the_route_copies_only(reports, arch):
    report = reports[arch]
    assert report['flops_by_op']['ssm_proj_route_copies'] == expected_route_copies(arch)
    assert report['flops_real'] == report['flops'] - expected_route_copies(arch)


def test_module_table_adds_up(reports):
    report = reports['tiny']
    rows = {row['module']: row for row in report['flops_by_module']}
    assert rows['(model)']['flops'] == report['flops']
    assert rows['(model)']['params'] == report['params']
    stages = sum(rows[f'backbone.layers.{i}']['flops'] for i in range(4))
    assert 0.9 * report['flops'] < stages < report['flops']


def test_flops_grow_linearly_with_pixels():
    small, large = (flop_report('nano', shape=[s])['flops'] for s in (256, 512))
    assert large / small == pytest.approx(4.0, rel=0.02)


def test_non_square_shape_and_alias():
    report = flop_report('t', shape=[256, 320])
    assert report['arch'] == 'tiny' and report['input_shape'] == [1, 3, 256, 320]
    assert 'official' not in report  # the official figure exists for 224x224 only


def test_scan_accounting_refuses_a_scan_outside_ms2d():
    """A scan the counter cannot attribute to an MS2D block is an error, not a silently wrong count."""
    u = torch.randn(1, 4, 8)
    counter = FlopCounter()
    with pytest.raises(RuntimeError, match='outside an MS2D module'):
        with counter.track(nn.Identity()), ms2d_scan_accounting(counter):
            selective_scan_fn(u, u, -torch.ones(4, 1), torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8))


def test_scan_accounting_counts_every_scan_and_hides_its_ops():
    """One MS2D block: both scans booked with the official handle, none of the PyTorch path's own ops counted."""
    from mmmsvmamba.analysis.flops import scan_flops
    from mmmsvmamba.ops import use_backend
    arch = dict(version='v3', dims=8, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=2, gate=False)
    model = MSVMamba(arch, out_indices=(0, ))
    counts = []
    for backend in ('torch', 'compiled'):
        counter = FlopCounter()
        with use_backend(backend), torch.no_grad(), counter.track(model), ms2d_scan_accounting(counter):
            model(torch.randn(1, 3, 32, 32))
        counts.append(dict(counter.by_module['']))
    assert counts[0] == counts[1]  # whatever backend runs the scans
    # stage 1 only (out_indices=(0,)): an 8x8 map, dim 8, full route L=64 and half-res routes 3 * 4 * 4
    assert counts[0]['selective_scan'] == scan_flops(1, 8, 64, 1, True) + scan_flops(1, 8, 48, 1, True)


# ---- detection / segmentation configs (when they exist and their libraries are installed) ------------------------

def _configs(pattern):
    return sorted((ROOT / 'configs').glob(pattern))


@pytest.mark.skipif(not _configs('upernet_msvmamba_m_160k_ade20k.py') or importlib.util.find_spec('mmseg') is None,
                    reason='needs configs/upernet_msvmamba_m_160k_ade20k.py and mmseg')
def test_upernet_config_at_official_shape():
    report = flop_report(str(_configs('upernet_msvmamba_m_160k_ade20k.py')[0]))
    assert report['input_shape'] == [1, 3, 512, 2048] and report['kind'] == 'EncoderDecoder'
    assert report['official']['gflops'] == 875.0
    assert abs(report['official']['diff_pct']) < 3.0


@pytest.mark.skipif(not _configs('mask_rcnn_msvmamba_m_1x.py') or importlib.util.find_spec('mmdet') is None,
                    reason='needs configs/mask_rcnn_msvmamba_m_1x.py and mmdet')
def test_mask_rcnn_config_counts_rpn_and_roi_heads():
    """A small input and 50 proposals keep the CPU run short; the official size is in docs/benchmarks.md."""
    config = str(_configs('mask_rcnn_msvmamba_m_1x.py')[0])
    report = flop_report(config, shape=[128, 160], cfg_options={'model.test_cfg.rpn.max_per_img': 50})
    backbone_only = flop_report('micro', shape=[128, 160])
    assert report['kind'] == 'MaskRCNN' and 'official' not in report
    assert report['num_proposals'] == 50
    # Shared2FCBBoxHead on each proposal: 7*7*256 -> 1024 -> 1024, then 81 scores and 320 box deltas (MACs)
    box_head = {row['module']: row for row in report['flops_by_module']}['roi_head']['flops']
    assert box_head > 50 * (7 * 7 * 256 * 1024 + 1024 * 1024 + 1024 * (81 + 320))
    rows = {row['module']: row for row in report['flops_by_module']}
    assert rows['roi_head']['flops'] > 0 and rows['rpn_head']['flops'] > 0 and rows['neck']['flops'] > 0
    # the detector's backbone is the classifier's plus outnorm0-2: layer norms, 5 FLOPs per element of the
    # stage 0-2 outputs (v1 stem floors: 32x40, then 16x20, 8x10 at widths 64, 128, 256)
    classifier_backbone = {row['module']: row for row in backbone_only['flops_by_module']}['backbone']['flops']
    extra_norms = 5 * (64 * 32 * 40 + 128 * 16 * 20 + 256 * 8 * 10)
    assert rows['backbone']['flops'] == classifier_backbone + extra_norms
