"""mmengine checkpoints load under torch's weights-only unpickler inside our scope, and only there; mmengine's
local-file checkpoint loader reads inside that scope once mmmsvmamba.engine is imported."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from mmmsvmamba.engine import checkpoint_globals, load_from_local, mmengine_checkpoint_globals


class Payload:
    """A class that is not data: unpickling it must stay forbidden."""

    def __reduce__(self):
        return (print, ('code ran',))


class AttributeProbe:
    """Pickles as getattr(HistoryBuffer, '__init__'): getattr beyond statistics methods must be refused."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def _mmengine_like(path):
    buffer = HistoryBuffer()
    for value in (0.5, 0.25):
        buffer.update(np.float64(value))
    torch.save(dict(state_dict=dict(w=torch.ones(2)),
                    message_hub=dict(log_scalars={'train/loss': buffer}, runtime_info=dict(iter=np.int64(3))),
                    meta=dict(seed=0, dataset_meta=dict(classes=('a', 'b')))), path)
    return path


def test_mmengine_types_load_only_inside_the_scope(tmp_path):
    path = _mmengine_like(tmp_path / 'epoch_1.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    with mmengine_checkpoint_globals():
        ckpt = torch.load(path, weights_only=True)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 0.25 and buffer.mean() == 0.375
    assert ckpt['message_hub']['runtime_info']['iter'] == 3
    # the allow-list does not outlive the context
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


@pytest.mark.parametrize('payload', [Payload(), AttributeProbe()], ids=['call', 'getattr'])
def test_code_stays_forbidden_inside_the_scope(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save(dict(x=payload), path)
    with mmengine_checkpoint_globals(), pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_only_data_types_are_allowed():
    for entry in checkpoint_globals():
        obj = entry[0] if isinstance(entry, tuple) else entry
        module = getattr(obj, '__module__', '') or ''
        assert module.startswith(('numpy', 'mmengine.logging', 'mmmsvmamba.engine')), obj


def test_mmengine_reads_its_checkpoints_through_our_loader(tmp_path):
    path = _mmengine_like(tmp_path / 'iter_600.pth')
    assert CheckpointLoader._get_checkpoint_loader(str(path)) is load_from_local
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 0.375
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize('payload', [Payload(), AttributeProbe()], ids=['call', 'getattr'])
def test_mmengine_loader_still_refuses_code(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1)), x=payload), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path))
