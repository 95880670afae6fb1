"""Official checkpoints: every container layout, foreign pickled classes (read as data, no code run), loud failures
on missing / unexpected / mis-shaped keys, init_cfg, and the conversion of official files into weights-only ones."""
import os
import pickle
import re
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from mmmsvmamba import MSVMamba
from mmmsvmamba.models.checkpoint import (CheckpointError, ForeignObject, check_keys, convert_official,
                                          load_checkpoint_file, load_pretrained, official_task, official_to_mmpretrain,
                                          save_weights_only, strip_prefix)
from mmmsvmamba.models.checkpoint.reading import TORCH_PRIVATE_NAMES, torch_weights_only_names
from tests.official import FIXTURE_ARCH as ARCH
from tests.official import official_classifier_state_dict, save_official_training_file, save_with_foreign_class


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
    state = official_classifier_state_dict()
    converted = official_to_mmpretrain({'model': state, 'epoch': 299})
    expected = {('backbone.outnorm3.' + k[len('classifier.norm.'):]) if k.startswith('classifier.norm.') else
                ('head.fc.' + k[len('classifier.head.'):]) if k.startswith('classifier.head.') else 'backbone.' + k: k
                for k in state}
    assert list(converted) == list(expected)
    for new, old in expected.items():
        assert converted[new] is state[old], new


def test_strip_prefix_only_where_present():
    assert list(strip_prefix({'module.a': 1, 'b': 2, 'x.module.c': 3})) == ['a', 'b', 'x.module.c']
    assert list(strip_prefix({'backbone.a': 1, 'neck.b': 2}, 'backbone.')) == ['a', 'neck.b']


def test_key_report_names_every_kind_of_mismatch():
    own = {'a': torch.zeros(2), 'b': torch.zeros(3), 'c': torch.zeros(1)}
    check_keys({'a': torch.ones(2), 'b': torch.ones(3), 'c': torch.ones(1)}, own, 'x.pth', 'the model')
    with pytest.raises(CheckpointError) as info:
        check_keys({'a': torch.ones(2), 'b': torch.ones(4), 'd': torch.ones(1)}, own, 'x.pth', 'the model',
                   outcome='nothing was written', hint='a hint')
    assert str(info.value) == ("x.pth does not fit the model; nothing was written.\n  missing (1): ['c']\n"
                               "  unexpected (1): ['d']\n  shape mismatch (1): ['b: checkpoint (4,) vs model (3,)']\n"
                               'a hint')


@pytest.mark.parametrize('checkpoint_key', [None, 'model_ema'])
def test_convert_an_official_classification_file(tmp_path, checkpoint_key):
    state = official_classifier_state_dict()
    save_official_training_file(tmp_path / 'official.pth', state, ema_offset=1)
    ckpt = load_checkpoint_file(str(tmp_path / 'official.pth'))
    assert isinstance(ckpt['config'], ForeignObject) and official_task(ckpt) == 'classification'
    converted = convert_official(ckpt, checkpoint_key)
    assert converted['meta'] == dict(task='classification', entry=checkpoint_key or 'model')
    expected = official_to_mmpretrain(ckpt, checkpoint_key=checkpoint_key)
    assert list(converted['state_dict']) == list(expected)
    offset = 0 if checkpoint_key is None else 1
    torch.testing.assert_close(converted['state_dict']['head.fc.weight'], state['classifier.head.weight'] + offset)
    save_weights_only(converted, str(tmp_path / 'out' / 'converted.pth'))
    again = torch.load(tmp_path / 'out' / 'converted.pth', weights_only=True)
    assert list(again['state_dict']) == list(expected)


def _detector_state():
    backbone = OrderedDict((f'backbone.{k}', v) for k, v in MSVMamba(ARCH).state_dict().items())
    return OrderedDict(**backbone, **{'neck.conv.weight': torch.ones(4, 8, 1, 1), 'rpn_head.bias': torch.zeros(4)})


def test_convert_an_official_detection_file(tmp_path):
    hub = pytest.importorskip('mmengine.logging').MessageHub('official')
    hub.update_scalar('train/loss', np.float64(0.5))
    state = _detector_state()
    ckpt = dict(meta=dict(mmengine_version='0.10.1', dataset_meta=dict(classes=('a', 'b'))),
                state_dict=OrderedDict((f'module.{k}', v) for k, v in state.items()), message_hub=hub.state_dict(),
                optimizer=dict(state={}, param_groups=[]))
    assert official_task(ckpt) == 'detseg'
    converted = convert_official(ckpt)
    assert converted['meta'] == dict(task='detseg', dataset_meta=dict(classes=('a', 'b')),
                                     converted_from_mmengine='0.10.1')
    assert list(converted['state_dict']) == list(state)
    with pytest.raises(CheckpointError, match="keeps its weights under state_dict, not 'model_ema'"):
        convert_official(ckpt, 'model_ema')


def test_a_backbone_loads_from_an_mmengine_detector_file(tmp_path):
    """init_cfg may name a detector's checkpoint (message hub and all): its backbone.* weights load."""
    hub = pytest.importorskip('mmengine.logging').MessageHub('det')
    hub.update_scalar('train/loss', np.float64(0.5))
    state = OrderedDict((k, v + 0.5) for k, v in _detector_state().items())
    path = tmp_path / 'epoch_12.pth'
    torch.save(dict(state_dict=state, message_hub=hub.state_dict()), path)
    model = MSVMamba(ARCH)
    assert load_pretrained(model, str(path))['missing_outnorm'] == []
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[f'backbone.{key}'])


@pytest.mark.parametrize('ckpt, message', [
    ({'epoch': 3}, 'not an official MSVMamba checkpoint'),
    ({'state_dict': {'backbone.a': torch.ones(1)}}, 'not an official MSVMamba checkpoint'),
    ({'state_dict': {'backbone.a': torch.ones(1), 'neck.b': 'text'}}, 'not tensors: ..neck.b'),
])
def test_files_that_are_no_official_checkpoint(ckpt, message):
    with pytest.raises(CheckpointError, match=message):
        convert_official(ckpt)


def test_save_weights_only_refuses_what_a_plain_load_cannot_read(tmp_path):
    with pytest.raises(CheckpointError, match='holds more than tensors and plain data'):
        save_weights_only(dict(meta=ForeignObject(), state_dict={}), str(tmp_path / 'x.pth'))


def test_torch_still_has_the_private_names_the_unpickler_uses():
    from torch import _weights_only_unpickler
    missing = [name for name in TORCH_PRIVATE_NAMES if not hasattr(_weights_only_unpickler, name)]
    assert not missing, (f'torch {torch.__version__} moved torch._weights_only_unpickler.{missing}: the checkpoint '
                         'reader (mmmsvmamba/models/checkpoint/reading.py) takes its trusted names from them')
    trusted, blocked = torch_weights_only_names()
    assert trusted['torch._utils._rebuild_tensor_v2'] is torch._utils._rebuild_tensor_v2
    assert trusted['collections.OrderedDict'] is OrderedDict and {'sys', 'os', 'posix', 'nt'} <= blocked


def test_a_torch_without_them_is_an_error_naming_its_version(monkeypatch, tmp_path):
    from torch import _weights_only_unpickler
    monkeypatch.delattr(_weights_only_unpickler, '_blocklisted_modules')
    path = tmp_path / 'w.pth'
    torch.save({'w': torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match=rf'torch {re.escape(torch.__version__)} has no '
                                              r'torch._weights_only_unpickler._blocklisted_modules'):
        load_checkpoint_file(str(path))
