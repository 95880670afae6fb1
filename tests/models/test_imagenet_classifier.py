"""The one plain ImageNet classifier (mmmsvmamba.models.ImageNetClassifier): the official logits from an official
classification file, and one checkpoint loading into it, into mmpretrain's ImageClassifier of the in1k configs and
from the official-file conversion, with the same outputs."""
import pytest
import torch

from mmmsvmamba.models import ImageNetClassifier, convert_official, load_weights
from mmmsvmamba.models.checkpoint import CheckpointError, load_checkpoint_file, save_weights_only
from tests.official import FIXTURE_ARCH, load_fixture, save_official_training_file


@pytest.fixture(scope='module')
def fixture_data():
    return load_fixture()


@pytest.fixture(scope='module')
def official_file(fixture_data, tmp_path_factory):
    path = tmp_path_factory.mktemp('official') / 'official.pth'
    save_official_training_file(path, fixture_data['state_dict'])
    return str(path)


def test_official_logits_from_an_official_file(fixture_data, official_file):
    model = ImageNetClassifier(FIXTURE_ARCH).eval()
    assert len(load_weights(model, official_file)) == len(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(fixture_data['input']), fixture_data['logits'], atol=1e-4, rtol=1e-4)


def test_a_checkpoint_of_another_classifier_is_refused_with_the_key_report(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': ImageNetClassifier(FIXTURE_ARCH, 7).state_dict()}, path)
    model = ImageNetClassifier(FIXTURE_ARCH, 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"does not fit this ImageNetClassifier(.|\n)*shape mismatch \(2\): "
                                              r"\['head.fc.weight: checkpoint \(7, 192\) vs model \(10, 192\)'"):
        load_weights(model, str(path))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def _mmpretrain_classifier(arch, num_classes):
    """mmpretrain's ImageClassifier as the in1k configs build it (their model section, this arch)."""
    pytest.importorskip('mmpretrain')
    import mmmsvmamba.registry  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='ImageClassifier', backbone=dict(type='MSVMamba', arch=arch, out_indices=(3, )),
                                 neck=dict(type='GlobalAveragePooling'),
                                 head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=192)))


def test_one_checkpoint_loads_into_all_three(fixture_data, official_file, tmp_path):
    """the plain classifier's checkpoint -> mmpretrain's ImageClassifier; the converted official file -> both."""
    plain = ImageNetClassifier(FIXTURE_ARCH).eval()
    load_weights(plain, official_file)
    ours = tmp_path / 'plain.pth'
    torch.save({'state_dict': plain.state_dict(), 'meta': {}}, ours)
    converted = tmp_path / 'converted.pth'
    save_weights_only(convert_official(load_checkpoint_file(official_file)), str(converted))

    mmpretrain_model = _mmpretrain_classifier(FIXTURE_ARCH, 1000).eval()
    for path in (ours, converted):
        load_weights(mmpretrain_model, str(path))
        with torch.no_grad():
            torch.testing.assert_close(mmpretrain_model(fixture_data['input'], mode='tensor'),
                                       fixture_data['logits'], atol=1e-4, rtol=1e-4)
    again = ImageNetClassifier(FIXTURE_ARCH).eval()
    load_weights(again, str(converted))
    with torch.no_grad():
        torch.testing.assert_close(again(fixture_data['input']), fixture_data['logits'], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('config, arch', [('configs/msvmamba_n_in1k.py', 'nano'),
                                          ('configs/msvmamba_t_in1k.py', 'tiny')])
def test_same_keys_and_shapes_as_the_in1k_configs_classifier(config, arch):
    pytest.importorskip('mmpretrain')
    from mmmsvmamba.engine.config import build_model, load_config
    theirs = build_model(load_config(config)).state_dict()
    ours = ImageNetClassifier(arch).state_dict()
    assert [(k, v.shape) for k, v in ours.items()] == [(k, v.shape) for k, v in theirs.items()]
