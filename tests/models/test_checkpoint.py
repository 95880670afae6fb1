"""Loading official checkpoints: every container layout, foreign pickled classes (read as data, no code run),
loud failures on missing / unexpected / mis-shaped keys, and init_cfg."""
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict

import pytest
import torch

from mmmsvmamba import MSVMamba
from mmmsvmamba.models.checkpoint import CheckpointError, load_checkpoint_file, load_pretrained, official_to_mmpretrain

ARCH = dict(version='v3', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=4, gate=False)


def official_classifier_state_dict(arch=ARCH, seed=0):
    """A state dict in the official classification layout: backbone keys + classifier.norm/head."""
    torch.manual_seed(seed)
    model = MSVMamba(arch, out_indices=(3, ))
    state = OrderedDict((k, v + 0.01 * torch.randn_like(v)) for k, v in model.state_dict().items()
                        if not k.startswith('outnorm'))
    width = model.dims[3]
    state.update({'classifier.norm.weight': torch.rand(width), 'classifier.norm.bias': torch.rand(width),
                  'classifier.head.weight': torch.rand(10, width), 'classifier.head.bias': torch.rand(10)})
    return state


def assert_backbone_loaded(model, state):
    own = model.state_dict()
    for key, value in state.items():
        if not key.startswith('classifier.'):
            torch.testing.assert_close(own[key], value, msg=key)


@pytest.mark.parametrize('layout', ['bare', 'model', 'model_ema', 'state_dict', 'module.', 'backbone.'])
def test_container_layouts(tmp_path, layout):
    state = official_classifier_state_dict()
    if layout in ('module.', 'backbone.'):
        payload = {'state_dict': OrderedDict((layout + k, v) for k, v in state.items())}
    elif layout == 'bare':
        payload = state
    else:
        payload = {layout: state, 'epoch': 300}
    path = tmp_path / 'ckpt.pth'
    torch.save(payload, path)
    model = MSVMamba(ARCH)
    report = load_pretrained(model, str(path))
    assert_backbone_loaded(model, state)
    assert sorted(report['missing_outnorm']) == sorted(k for k in model.state_dict() if k.startswith('outnorm'))
    assert sorted(report['ignored']) == sorted(k for k in state if k.startswith('classifier.'))


def test_checkpoint_key_selects_entry(tmp_path):
    path = tmp_path / 'ckpt.pth'
    main, ema = official_classifier_state_dict(seed=0), official_classifier_state_dict(seed=1)
    torch.save({'model': main, 'model_ema': ema}, path)
    model = MSVMamba(ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path), checkpoint_key='model_ema'))
    model.init_weights()
    assert_backbone_loaded(model, ema)
    with pytest.raises(CheckpointError, match=r"no entry 'ema'"):
        load_pretrained(MSVMamba(ARCH), str(path), checkpoint_key='ema')


def save_with_foreign_class(path, payload, module_name, class_name, cls_body):
    """Pickle ``payload`` with an instance of a class that exists only while saving (like yacs.config.CfgNode)."""
    parts = module_name.split('.')
    names = ['.'.join(parts[:i + 1]) for i in range(len(parts))]
    modules = {name: types.ModuleType(name) for name in names}
    cls = type(class_name, cls_body[0], dict(cls_body[1], __module__=module_name))
    setattr(modules[module_name], class_name, cls)
    for parent, child in zip(names, names[1:]):
        setattr(modules[parent], child.rsplit('.', 1)[1], modules[child])
    sys.modules.update(modules)
    try:
        torch.save(payload(cls), path)
    finally:
        for name in names:
            del sys.modules[name]


def test_official_training_file_with_yacs_config(tmp_path):
    state = official_classifier_state_dict()
    path = tmp_path / 'official.pth'

    def payload(cfg_node):
        config = cfg_node()
        config['MODEL'] = cfg_node(NAME='msvmambav3_tiny')
        return {'model': state, 'config': config, 'epoch': 299, 'max_accuracy': 83.0}

    save_with_foreign_class(path, payload, 'yacs.config', 'CfgNode', ((dict, ), {}))
    assert 'yacs' not in sys.modules
    ckpt = load_checkpoint_file(str(path))
    assert ckpt['epoch'] == 299
    model = MSVMamba(ARCH)
    load_pretrained(model, str(path))
    assert_backbone_loaded(model, state)


def save_evil(path, state, function, args):
    """A checkpoint with an object whose unpickling would call ``function(*args)``."""
    reduce = lambda self: (function, args)  # noqa: E731
    save_with_foreign_class(path, lambda cls: {'model': state, 'extra': cls()}, 'evil_module', 'Evil',
                            ((object, ), {'__reduce__': reduce}))


def test_pickled_call_is_read_as_data_not_run(tmp_path):
    """A pickled call to subprocess.call becomes an inert stand-in: the weights load, the command never runs."""
    marker, path = tmp_path / 'pwned', tmp_path / 'evil.pth'
    state = official_classifier_state_dict()
    save_evil(path, state, subprocess.call, (['touch', str(marker)], ))
    model = MSVMamba(ARCH)
    load_pretrained(model, str(path))
    assert not marker.exists()
    assert_backbone_loaded(model, state)
    with pytest.raises(pickle.UnpicklingError):  # a plain weights-only torch.load refuses the file
        torch.load(path, weights_only=True)


def test_blocked_module_in_pickle_is_refused(tmp_path):
    marker, path = tmp_path / 'pwned', tmp_path / 'evil.pth'
    save_evil(path, official_classifier_state_dict(), os.system, (f'touch {marker}', ))
    with pytest.raises(CheckpointError, match=r'cannot read checkpoint .*system'):
        load_pretrained(MSVMamba(ARCH), str(path))
    assert not marker.exists()


def test_missing_keys_raise_and_load_nothing(tmp_path):
    state = official_classifier_state_dict()
    del state['layers.2.blocks.0.op.A_logs']
    del state['patch_embed.0.weight']
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    model = MSVMamba(ARCH)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"missing \(2\).*layers.2.blocks.0.op.A_logs"):
        load_pretrained(model, str(path))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_other_arch_raises_with_keys(tmp_path):
    """A deeper model's checkpoint: extra blocks are unexpected keys, not silently dropped."""
    path = tmp_path / 'deeper.pth'
    torch.save(official_classifier_state_dict(dict(ARCH, depths=[1, 2, 1, 1])), path)
    with pytest.raises(CheckpointError, match=r'unexpected \(\d+\).*layers.1.blocks.1'):
        load_pretrained(MSVMamba(ARCH), str(path))


def test_shape_mismatch_raises(tmp_path):
    path = tmp_path / 'wider.pth'
    torch.save(official_classifier_state_dict(dict(ARCH, dims=32)), path)
    with pytest.raises(CheckpointError, match=r'shape mismatch .*patch_embed.0.weight: checkpoint \(16, 3, 3, 3\)'):
        load_pretrained(MSVMamba(ARCH), str(path))


def test_conv_layout_projection_weights_load(tmp_path):
    """Official Linear2d also accepts (out, in, 1, 1) in_proj/out_proj weights; so must we."""
    state = official_classifier_state_dict()
    key = 'layers.0.blocks.0.op.in_proj.weight'
    state[key] = state[key][:, :, None, None]
    path = tmp_path / 'conv_layout.pth'
    torch.save(state, path)
    model = MSVMamba(ARCH)
    load_pretrained(model, str(path))
    torch.testing.assert_close(model.state_dict()[key], state[key][:, :, 0, 0])


def test_missing_file_error():
    model = MSVMamba(ARCH, init_cfg=dict(type='Pretrained', checkpoint='/nonexistent/msvmamba.pth'))
    with pytest.raises(FileNotFoundError, match=r"checkpoint file not found: '/nonexistent/msvmamba.pth'"):
        model.init_weights()


def test_not_a_checkpoint_error(tmp_path):
    path = tmp_path / 'junk.pth'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot read checkpoint'):
        load_pretrained(MSVMamba(ARCH), str(path))


def test_official_to_mmpretrain_keys():
    converted = official_to_mmpretrain(official_classifier_state_dict())
    assert 'backbone.outnorm3.weight' in converted and 'head.fc.weight' in converted
    assert 'backbone.layers.0.blocks.0.op.Ds' in converted
    assert not any(k.startswith('classifier') or k.startswith('backbone.classifier') for k in converted)
