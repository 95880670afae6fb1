"""The GPU report's command lines and markdown on a machine without a GPU (the report itself needs one): every
owed step is there with the anchors' protocol, the tables come out in docs/benchmarks.md's form, and the tool
refuses to run without CUDA."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmmsvmamba.analysis.gpu_report import ROOT, _steps, to_markdown


def test_steps_cover_what_is_owed_to_a_gpu(tmp_path):
    steps = {name: (command, env) for name, command, env in _steps(tmp_path, (9, 0))}
    assert list(steps) == ['build', 'ops.check --require-cuda', 'pytest tests/ops', 'scan benchmark float32',
                           'scan benchmark bfloat16', 'classifier benchmark']
    assert steps['build'][1] == dict(MMMSVMAMBA_WITH_CUDA='1', MMMSVMAMBA_WITH_EMULATED='1', TORCH_CUDA_ARCH_LIST='9.0')
    classify = steps['classifier benchmark'][0]
    assert classify[classify.index('--amp') + 1] == 'fp16' and classify[classify.index('--device') + 1] == 'cuda'
    for command, _ in steps.values():  # every script it runs exists
        script = next((part for part in command if part.endswith('.py')), None)
        assert script is None or (ROOT / script).is_file(), script


def test_markdown_tables():
    report = dict(device='NVIDIA H100', torch='2.14.1', cuda='13.0', steps=[
        dict(name='build', status='ok', seconds=91.0, output=''),
        dict(name='scan benchmark float32', status='ok', seconds=30.0,
             output='noise\n# selective scan, float32\n| shape | stage |\n| --- | --- |\n| cls b128 | 1 |\n')],
        classify=dict(results=[dict(model='tiny', mode='infer_amp_fp16', bs=128, img_s=4000.0, peak_MB=1500.0,
                                    official_h100=dict(img_s=2276.05, img_s_ratio=1.757))]))
    text = to_markdown(report)
    assert '| build | ok | 91 |' in text and '| cls b128 | 1 |' in text and 'noise' not in text
    assert '| tiny | infer_amp_fp16 | 128 | 4000.0 | 1500 | 2276.05 (1.76x) |' in text


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a machine without CUDA')
def test_refuses_without_a_gpu():
    result = subprocess.run([sys.executable, 'tools/gpu_report.py', '--out', 'unused'], cwd=Path(ROOT),
                            capture_output=True, text=True)
    assert result.returncode == 2 and 'no CUDA device' in result.stderr and result.stderr.count('\n') == 1
