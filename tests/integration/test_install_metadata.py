"""Installing the package into an existing environment changes none of its packages: what setup.py declares has no
upper bounds and no OpenMMLab pins, and pip's own plan for ``pip install --no-build-isolation .`` in this
environment (upstream or OneDL stack) installs mmmsvmamba and nothing else."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> list:
    text = (ROOT / 'requirements' / 'runtime.txt').read_text()
    return [line.split('#')[0].strip() for line in text.splitlines() if line.split('#')[0].strip()]


def test_declared_requirements_only_set_lower_bounds():
    declared = _declared()
    assert declared, 'requirements/runtime.txt declares nothing'
    for requirement in declared:
        name = re.split(r'[<>=!~;\[ ]', requirement)[0].lower()
        assert not name.startswith(('mm', 'onedl')), f'{requirement}: OpenMMLab libraries are the user\'s choice'
        assert not re.search(r'<|==|~=|!=', requirement), \
            f'{requirement}: an upper bound or pin fights the user\'s stack'


def test_pip_would_install_nothing_but_mmmsvmamba(tmp_path):
    report = tmp_path / 'plan.json'
    # --no-index: everything the package needs must already be here; nothing is fetched or upgraded
    proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-build-isolation', '--no-index',
                           '--report', str(report), '--quiet', str(ROOT)], capture_output=True, text=True,
                          env=dict(os.environ, MMMSVMAMBA_WITH_CUDA='0'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(report.read_text())['install']
    assert [item['metadata']['name'] for item in plan] == ['mmmsvmamba'], plan
