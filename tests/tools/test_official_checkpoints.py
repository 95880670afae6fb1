"""Official MSVMamba checkpoints load into our configs. Detection/segmentation ones (v1 Micro/Tiny; mmengine-written
files): directly through mmengine's runner and the mmdet/mmseg API functions (mmmsvmamba.engine's checkpoint
reader), and converted (mmmsvmamba.models.checkpoint, what tools/convert_checkpoint.py runs) into a tensors-only
file. Classification ones (yacs config pickled inside): through tools/convert_checkpoint.py into an mmpretrain
classifier's file; the tool names every key that does not fit the --config model.

The checkpoints are built here in the official layout: backbone keys and shapes from the official key list
(tests/data/official, measured on the official code), neck/head keys from mmdet 3.3 / mmseg 1.2 (the versions the
official code used), wrapped the way mmengine saves a training run (meta with the config, message hub with
HistoryBuffers of numpy values, optimizer and scheduler states)."""
import os
import pickle
import re
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmmsvmamba.engine.config import build_model, load_config
from mmmsvmamba.models.checkpoint import (CheckpointError, check_keys, convert_official, load_checkpoint_file,
                                          save_weights_only)
from tests.official import official_classifier_state_dict, read_key_list, save_official_training_file

from .conftest import ROOT

# the 3x checkpoints fit the same models (a 3x config inherits its 1x config's model; tests/configs checks it)
CONFIGS = {
    ('det', 'micro'): ['configs/mask_rcnn_msvmamba_m_1x.py'],
    ('det', 'tiny_v1'): ['configs/mask_rcnn_msvmamba_t-v1_1x.py'],
    ('seg', 'micro'): ['configs/upernet_msvmamba_m_160k_ade20k.py'],
    ('seg', 'tiny_v1'): ['configs/upernet_msvmamba_t-v1_160k_ade20k.py'],
}
ALL = [(task, arch, c) for (task, arch), configs in CONFIGS.items() for c in configs]


def official_tiny_v1_backbone():
    """Key -> shape of the official Backbone_VSSM (v1 Tiny): classifier dropped, outnorm0..3 added."""
    shapes = OrderedDict((k, v) for k, v in read_key_list('official_v1_tiny_keys.txt').items()
                         if not k.startswith('classifier.'))
    shapes.update((k, v) for k, v in read_key_list('official_v1_tiny_mmbackbone_extra_keys.txt').items()
                  if k.startswith('outnorm'))
    return shapes


def _build(config):
    return build_model(load_config(os.path.join(ROOT, config)))


def convert(*args) -> subprocess.CompletedProcess:
    """tools/convert_checkpoint.py with ``args``, as a user runs it."""
    return subprocess.run([sys.executable, 'tools/convert_checkpoint.py', *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def official_layout(model, arch):
    """Key -> (shape, dtype) of the official checkpoint for this model: backbone from the official key list
    (Tiny-v1) or, for Micro, the same names (Micro = Tiny-v1 with 5 instead of 9 stage-3 blocks) with Micro's
    shapes; neck and heads as mmdet/mmseg build them (BN counters are integers)."""
    own = model.state_dict()
    tiny = official_tiny_v1_backbone()
    if arch == 'tiny_v1':
        backbone = OrderedDict(('backbone.' + k, (v, torch.float32)) for k, v in tiny.items())
    else:
        names = [k for k in tiny if not re.match(r'layers\.2\.blocks\.[5-8]\.', k)]
        backbone = OrderedDict(('backbone.' + k, (tuple(own['backbone.' + k].shape), torch.float32)) for k in names)
    heads = OrderedDict((k, (tuple(v.shape), v.dtype)) for k, v in own.items() if not k.startswith('backbone.'))
    return OrderedDict(**backbone, **heads)


def write_official_checkpoint(path, layout, task):
    generator = torch.Generator().manual_seed(0)
    state_dict = OrderedDict(
        (k, torch.randn(shape, generator=generator) if dtype.is_floating_point else torch.randint(
            0, 1000, shape, generator=generator, dtype=dtype)) for k, (shape, dtype) in layout.items())
    hub = MessageHub(f'official_{task}')
    for loss in (0.9, 0.7, 0.6):
        hub.update_scalar('train/loss', np.float64(loss))
    hub.update_info('epoch', 12)
    classes = ('person', 'bicycle', 'car') if task == 'det' else ('wall', 'building', 'sky')
    torch.save(
        dict(meta=dict(cfg='model = dict()', seed=0, epoch=12, iter=87936, mmengine_version='0.10.1',
                       dataset_meta=dict(classes=classes, palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142)])),
             state_dict=state_dict, message_hub=hub.state_dict(),
             optimizer=dict(state={0: dict(step=torch.tensor(10.), exp_avg=torch.zeros(3))},
                            param_groups=[dict(lr=1e-6, betas=(0.9, 0.999), weight_decay=0.05, params=[0])]),
             param_schedulers=[dict(start_factor=0.001, end=1000, last_step=87936)]), path)
    return state_dict


@pytest.fixture(scope='module', params=ALL, ids=[os.path.basename(c)[:-3] for _, _, c in ALL])
def official(request, tmp_path_factory):
    task, arch, config = request.param
    model = _build(config)
    layout = official_layout(model, arch)
    path = str(tmp_path_factory.mktemp('official') / 'official.pth')
    state_dict = write_official_checkpoint(path, layout, task)
    return dict(task=task, arch=arch, config=config, model=model, path=path, state_dict=state_dict)


def test_layout_is_exactly_the_models_keys_and_shapes(official):
    own = official['model'].state_dict()
    assert list(official['state_dict']) == list(own)
    assert all(official['state_dict'][k].shape == own[k].shape for k in own)


def test_plain_weights_only_load_refuses_the_file(official):
    with pytest.raises(pickle.UnpicklingError):
        torch.load(official['path'], weights_only=True)


def test_runner_loads_it_directly(official, tmp_path):
    from mmengine.runner import Runner
    model = official['model']
    runner = Runner(model=model, work_dir=str(tmp_path),
                    default_scope=load_config(os.path.join(ROOT, official['config'])).default_scope)
    runner.load_checkpoint(official['path'], strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, official['state_dict'][key]), key


def _api_model(official, checkpoint):
    config = os.path.join(ROOT, official['config'])
    if official['task'] == 'det':
        from mmdet.apis import init_detector
        model = init_detector(config, checkpoint, device='cpu')
        assert model.dataset_meta['classes'] == ('person', 'bicycle', 'car')
    else:
        from mmseg.apis import init_model
        model = init_model(config, checkpoint, device='cpu')
        assert model.dataset_meta['classes'] == ('wall', 'building', 'sky')
    for key, value in model.state_dict().items():
        assert torch.equal(value, official['state_dict'][key]), key


def test_api_functions_load_it_directly(official):
    _api_model(official, official['path'])


def test_converted_file_is_tensors_only_and_serves_the_api(official, tmp_path):
    out = str(tmp_path / 'converted.pth')
    converted = convert_official(load_checkpoint_file(official['path']))
    check_keys(converted['state_dict'], official['model'].state_dict(), official['path'], official['config'])
    save_weights_only(converted, out)
    converted = torch.load(out, weights_only=True)  # no allow-list needed any more
    assert set(converted) == {'meta', 'state_dict'} and converted['meta']['task'] == 'detseg'
    _api_model(official, out)


def test_a_checkpoint_for_another_model_is_named_key_by_key(official):
    other = {'micro': 'tiny_v1', 'tiny_v1': 'micro'}[official['arch']]
    config = CONFIGS[(official['task'], other)][0]
    converted = convert_official(load_checkpoint_file(official['path']))
    with pytest.raises(CheckpointError, match=r'(?s)does not fit .*(missing|unexpected) .*shape mismatch'):
        check_keys(converted['state_dict'], _build(config).state_dict(), official['path'], config)


@pytest.fixture(scope='module')
def official_nano_classifier(tmp_path_factory):
    """An official ImageNet training file of v1 Nano: model and model_ema, the yacs config pickled beside them."""
    from mmmsvmamba import MSVMamba
    path = tmp_path_factory.mktemp('official_cls') / 'msvmamba_nano.pth'
    state = official_classifier_state_dict(MSVMamba.parse_arch('nano'), num_classes=1000)
    save_official_training_file(path, state)
    return str(path), state


def test_an_official_classification_file_converts_for_mmpretrain(official_nano_classifier, tmp_path):
    path, state = official_nano_classifier
    out = str(tmp_path / 'nano_mmpretrain.pth')
    result = convert(path, out, '--config', 'configs/msvmamba_n_in1k.py')
    assert result.returncode == 0, result.stderr
    converted = torch.load(out, weights_only=True)['state_dict']
    model = _build('configs/msvmamba_n_in1k.py')
    model.load_state_dict(converted, strict=True)
    torch.testing.assert_close(model.head.fc.weight, state['classifier.head.weight'])
    torch.testing.assert_close(model.backbone.outnorm3.weight, state['classifier.norm.weight'])
    torch.testing.assert_close(model.backbone.layers[2].blocks[4].op.A_logs, state['layers.2.blocks.4.op.A_logs'])


def test_the_converter_names_the_keys_of_a_file_for_another_arch(official_nano_classifier, tmp_path):
    path, _ = official_nano_classifier
    out = tmp_path / 'x.pth'
    result = convert(path, str(out), '--config', 'configs/msvmamba_t_in1k.py')  # v1 Nano's keys, v3 Tiny's model
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert re.match(rf'convert_checkpoint.py: error: {re.escape(path)} does not fit configs/msvmamba_t_in1k.py; '
                    r'nothing was written.\n  missing .*\n  unexpected .*\n  shape mismatch .*', result.stderr,
                    re.S), result.stderr
    assert not out.exists()


def test_a_classification_file_is_refused_for_a_detection_config(official_nano_classifier, tmp_path):
    path, _ = official_nano_classifier
    result = convert(path, str(tmp_path / 'x.pth'), '--config', 'configs/mask_rcnn_msvmamba_n_1x.py')
    assert result.returncode == 2 and result.stderr == (
        f'convert_checkpoint.py: error: {path} is an official classification checkpoint, but '
        'configs/mask_rcnn_msvmamba_n_1x.py is an mmdet config\n')
