"""Registration: ``import mmmsvmamba`` puts MSVMamba into each installed OpenMMLab MODELS registry, configs with
``custom_imports`` build it in mmdet, mmseg and mmpretrain, and the package still imports without them."""
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

import mmmsvmamba

LIBRARIES = ['mmdet', 'mmseg', 'mmpretrain']


@pytest.mark.parametrize('library', LIBRARIES)
def test_registered_in_each_library(library):
    registry = __import__(f'{library}.registry', fromlist=['MODELS'])
    assert library in mmmsvmamba.REGISTERED
    assert registry.MODELS.get('MSVMamba') is mmmsvmamba.MSVMamba


@pytest.mark.parametrize('library', LIBRARIES)
def test_config_with_custom_imports_builds(library, tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text(textwrap.dedent(f"""
        default_scope = '{library}'
        custom_imports = dict(imports=['mmmsvmamba'], allow_failed_imports=False)
        backbone = dict(type='MSVMamba', arch='tiny', out_indices=(1, 3), drop_path_rate=0.1)
    """))
    cfg = Config.fromfile(str(path))
    registry = __import__(f'{library}.registry', fromlist=['MODELS'])
    backbone = registry.MODELS.build(cfg.backbone)
    assert isinstance(backbone, mmmsvmamba.MSVMamba) and backbone.out_indices == (1, 3)
    outs = backbone.eval()(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 192, 8, 8), (1, 768, 2, 2)]


@pytest.mark.parametrize('blocked', LIBRARIES + [['mmdet', 'mmseg', 'mmpretrain', 'mmengine']])
def test_imports_without_library(blocked):
    """With a library made unimportable, the package imports and registers in the others."""
    blocked = [blocked] if isinstance(blocked, str) else blocked
    script = textwrap.dedent(f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None  # makes 'import name' raise ImportError
        import torch, mmmsvmamba
        print(sorted(mmmsvmamba.REGISTERED))
        out = mmmsvmamba.MSVMamba(dict(version='v3', dims=16, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=4,
                                       gate=False)).eval()(torch.rand(1, 3, 32, 32))
        print(len(out))
    """)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    registered, n_outputs = result.stdout.strip().splitlines()[-2:]
    assert eval(registered) == sorted(set(LIBRARIES) - set(blocked))
    assert n_outputs == '4'
