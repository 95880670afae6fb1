"""MSVMamba inside an mmpretrain ImageClassifier: the official classifier's parameter counts, and the official
logits after loading an official-layout classification checkpoint."""
import json
from pathlib import Path

import pytest
import torch

import mmmsvmamba  # noqa: F401  (registers MSVMamba)
from mmmsvmamba.models import official_to_mmpretrain
from mmmsvmamba.models.checkpoint import extract_state_dict

mmpretrain = pytest.importorskip('mmpretrain')
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

OFFICIAL = Path(__file__).parents[1] / 'data' / 'official'
FACTS = json.loads((OFFICIAL / 'official_facts.json').read_text())['variants']
ARCH_TO_FACTS = dict(nano='v1_nano', micro='v1_micro', tiny_v1='v1_tiny', tiny='v3_tiny', small='v3_small',
                     base='v3_base')


def build_classifier(arch, width, num_classes=1000):
    # other tests leave mmengine's default scope at mmdet or mmseg; the classifier lives in mmpretrain's
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return _build(arch, width, num_classes)


def _build(arch, width, num_classes):
    return MODELS.build(dict(type='ImageClassifier',
                             backbone=dict(type='MSVMamba', arch=arch, out_indices=(3, )),
                             neck=dict(type='GlobalAveragePooling'),
                             head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width)))


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_classifier_parameter_count(arch):
    width = mmmsvmamba.MSVMamba.parse_arch(arch)['dims'][3]
    model = build_classifier(arch, width)
    assert sum(p.numel() for p in model.parameters()) == FACTS[ARCH_TO_FACTS[arch]]['params_cls_model']


@pytest.mark.parametrize('inputs, logits', [('input', 'logits'), ('input_nonsquare', 'logits_nonsquare')])
def test_official_logits(inputs, logits):
    data = torch.load(OFFICIAL / 'msvmamba_v3_tiny_d1111_w24.pt', weights_only=True)
    arch = dict(version='v3', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=4, gate=False)
    model = build_classifier(arch, 192).eval()
    missing, unexpected = model.load_state_dict(official_to_mmpretrain({'model': data['state_dict']}), strict=True)
    assert not missing and not unexpected
    with torch.no_grad():
        ours = model(data[inputs], mode='tensor')
    torch.testing.assert_close(ours, data[logits], atol=1e-4, rtol=1e-4)


def test_converter_round_trip_keeps_every_tensor():
    data = torch.load(OFFICIAL / 'msvmamba_v3_tiny_d1111_w24.pt', weights_only=True)
    converted = official_to_mmpretrain(data['state_dict'])
    assert len(converted) == len(extract_state_dict(data['state_dict']))
