"""MSVMamba inside an mmpretrain ImageClassifier: the official classifier's parameter counts, and the official
logits after converting an official-layout classification checkpoint (every tensor where the mapping says)."""
import pytest
import torch

import mmmsvmamba  # noqa: F401  (registers MSVMamba)
from mmmsvmamba.models import convert_official, official_to_mmpretrain
from tests.official import ARCH_TO_FACTS, FIXTURE_ARCH, facts, load_fixture

mmpretrain = pytest.importorskip('mmpretrain')
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402


def build_classifier(arch, width, num_classes=1000):
    # other tests leave mmengine's default scope at mmdet or mmseg; the classifier lives in mmpretrain's
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='ImageClassifier',
                                 backbone=dict(type='MSVMamba', arch=arch, out_indices=(3, )),
                                 neck=dict(type='GlobalAveragePooling'),
                                 head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width)))


@pytest.fixture(scope='module')
def fixture_data():
    return load_fixture()


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_classifier_parameter_count(arch):
    width = mmmsvmamba.MSVMamba.parse_arch(arch)['dims'][3]
    model = build_classifier(arch, width)
    assert sum(p.numel() for p in model.parameters()) == facts(arch)['params_cls_model']


@pytest.mark.parametrize('inputs, logits', [('input', 'logits'), ('input_nonsquare', 'logits_nonsquare')])
def test_official_logits(fixture_data, inputs, logits):
    model = build_classifier(FIXTURE_ARCH, 192).eval()
    converted = convert_official({'model': fixture_data['state_dict'], 'epoch': 299})
    missing, unexpected = model.load_state_dict(converted['state_dict'], strict=True)
    assert not missing and not unexpected
    with torch.no_grad():
        ours = model(fixture_data[inputs], mode='tensor')
    torch.testing.assert_close(ours, fixture_data[logits], atol=1e-4, rtol=1e-4)


def test_every_official_tensor_lands_where_the_mapping_says(fixture_data):
    """classifier.norm -> backbone.outnorm3 (the classifier's backbone has out_indices=(3,)), classifier.head ->
    head.fc, everything else under backbone. with its own name: no tensor dropped, renamed otherwise or copied."""
    official = fixture_data['state_dict']
    converted = official_to_mmpretrain(official)

    def ours(key):
        for old, new in (('classifier.norm.', 'backbone.outnorm3.'), ('classifier.head.', 'head.fc.')):
            if key.startswith(old):
                return new + key[len(old):]
        return 'backbone.' + key

    assert sorted(converted) == sorted(ours(k) for k in official)
    for key, value in official.items():
        assert converted[ours(key)] is value, key
    own = build_classifier(FIXTURE_ARCH, 192).state_dict()
    assert sorted(own) == sorted(converted)
