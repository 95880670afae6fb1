"""mmengine checkpoints (message hub: HistoryBuffer, numpy data) read through the package's one restricted unpickler,
which mmmsvmamba.engine makes mmengine's loader for local files; anything beyond data is refused, and torch's own
weights-only loader is left as it is."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from mmmsvmamba.engine import load_from_local
from mmmsvmamba.models.checkpoint import UnsafeCheckpointError, data_global, load_checkpoint_file


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


@pytest.mark.parametrize('foreign', ['refuse', 'data'])
def test_mmengine_types_load_through_our_reader_only(tmp_path, foreign):
    path = _mmengine_like(tmp_path / 'epoch_1.pth')
    ckpt = load_checkpoint_file(str(path), foreign=foreign)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 0.25 and buffer.mean() == 0.375
    assert ckpt['message_hub']['runtime_info']['iter'] == 3
    # torch's own weights-only loader is not widened by any of this
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


@pytest.mark.parametrize('payload', [Payload(), AttributeProbe()], ids=['call', 'getattr'])
def test_code_is_refused_by_the_mmengine_reader(tmp_path, payload, capsys):
    path = tmp_path / 'evil.pth'
    torch.save(dict(x=payload), path)
    with pytest.raises(UnsafeCheckpointError, match=r'refusing (builtins.print|getattr)'):
        load_checkpoint_file(str(path), foreign='refuse')
    assert 'code ran' not in capsys.readouterr().out


def test_a_getattr_probe_is_refused_even_where_foreign_classes_are_data(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save(dict(x=AttributeProbe()), path)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing getattr\(.*HistoryBuffer.*'__init__'\)"):
        load_checkpoint_file(str(path), foreign='data')


def test_a_pickled_call_is_inert_data_where_foreign_classes_are_data(tmp_path, capsys):
    path = tmp_path / 'evil.pth'
    torch.save(dict(x=Payload(), w=torch.ones(1)), path)
    ckpt = load_checkpoint_file(str(path), foreign='data')
    assert 'code ran' not in capsys.readouterr().out
    assert ckpt['x'].args == ('code ran', ) and torch.equal(ckpt['w'], torch.ones(1))


@pytest.mark.parametrize('name', [
    'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct', 'numpy.core.multiarray.scalar',
    'numpy._core.multiarray.scalar', 'numpy.ndarray', 'numpy.dtype', 'numpy.dtypes.Float64DType',
    'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr'])
def test_the_unpicklers_data_names_resolve_to_data_types(name):
    obj = data_global(name)
    module = getattr(obj, '__module__', '') or ''
    assert obj is not None and module.startswith(('numpy', 'mmengine.logging', 'mmmsvmamba.models.checkpoint')), obj


@pytest.mark.parametrize('name', ['builtins.eval', 'builtins.exec', 'os.system', 'numpy.load',
                                  'numpy.core.multiarray.fromfile', 'numpy.testing.rundocs',
                                  'mmengine.logging.history_buffer.os', 'subprocess.call'])
def test_the_unpickler_resolves_nothing_else(name):
    assert data_global(name) is None


def test_mmengine_reads_its_checkpoints_through_our_loader(tmp_path):
    path = _mmengine_like(tmp_path / 'iter_600.pth')
    assert CheckpointLoader._get_checkpoint_loader(str(path)) is load_from_local
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 0.375
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: .*missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize('payload', [Payload(), AttributeProbe()], ids=['call', 'getattr'])
def test_mmengine_loader_still_refuses_code(tmp_path, payload, capsys):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1)), x=payload), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path))
    assert 'code ran' not in capsys.readouterr().out
