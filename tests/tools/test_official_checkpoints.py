"""Official MSVMamba detection/segmentation checkpoints (v1 Micro/Tiny; mmengine-written files) load into our
configs: directly through mmengine's runner and the mmdet/mmseg API functions (mmmsvmamba.engine's checkpoint
reader), and through tools/convert_detseg_checkpoint.py into a tensors-only file.

The checkpoints are built here in the official layout: backbone keys and shapes from the official key list
(tests/data/official, measured on the official code), neck/head keys from mmdet 3.3 / mmseg 1.2 (the versions the
official code used), wrapped the way mmengine saves a training run (meta with the config, message hub with
HistoryBuffers of numpy values, optimizer and scheduler states)."""
import os
import pickle
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

from .conftest import ROOT, load_tool

OFFICIAL = os.path.join(ROOT, 'tests', 'data', 'official')
# the 3x checkpoints fit the same models (tests/configs checks that 3x and 1x configs build the same model)
CONFIGS = {
    ('det', 'micro'): ['configs/mask_rcnn_msvmamba_m_1x.py'],
    ('det', 'tiny_v1'): ['configs/mask_rcnn_msvmamba_t-v1_1x.py'],
    ('seg', 'micro'): ['configs/upernet_msvmamba_m_160k_ade20k.py'],
    ('seg', 'tiny_v1'): ['configs/upernet_msvmamba_t-v1_160k_ade20k.py'],
}
ALL = [(task, arch, c) for (task, arch), configs in CONFIGS.items() for c in configs]


def _read_shapes(name, section=None):
    shapes, active = OrderedDict(), section is None
    with open(os.path.join(OFFICIAL, name)) as f:
        for line in f:
            if line.startswith('#'):
                active = section is None or section in line
                continue
            if active and line.strip():
                key, shape = line.split('\t')[:2]
                shapes[key] = tuple(int(v) for v in re.findall(r'\d+', shape))
    return shapes


def official_tiny_v1_backbone():
    """Key -> shape of the official Backbone_VSSM (v1 Tiny): classifier dropped, outnorm0..3 added."""
    shapes = OrderedDict((k, v) for k, v in _read_shapes('official_v1_tiny_keys.txt').items()
                         if not k.startswith('classifier.'))
    shapes.update(_read_shapes('official_v1_tiny_mmbackbone_extra_keys.txt', section='present in Backbone_VSSM'))
    return shapes


def _build(config):
    cfg = Config.fromfile(os.path.join(ROOT, config))
    init_default_scope(cfg.default_scope)
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['MODELS'])
    return registry.MODELS.build(cfg.model)


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
    runner = Runner(model=model, work_dir=str(tmp_path), default_scope=Config.fromfile(
        os.path.join(ROOT, official['config'])).default_scope)
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
    assert load_tool('convert_detseg_checkpoint').main([official['path'], out, '--config', official['config']]) == 0
    converted = torch.load(out, weights_only=True)  # no allow-list needed any more
    assert set(converted) == {'meta', 'state_dict'}
    _api_model(official, out)


def test_converter_rejects_a_checkpoint_for_another_model(official, tmp_path):
    other = {'micro': 'tiny_v1', 'tiny_v1': 'micro'}[official['arch']]
    config = CONFIGS[(official['task'], other)][0]
    with pytest.raises(ValueError, match=r'(?s)does not fit .*(missing|unexpected) .*shape mismatch'):
        load_tool('convert_detseg_checkpoint').main([official['path'], str(tmp_path / 'x.pth'), '--config', config])
