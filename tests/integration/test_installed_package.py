"""The package works installed, not only from a checkout: ``pip install --no-deps --no-build-isolation --target``
of the package sources into a scratch folder, then, from another directory with that folder first on the path, the
published figures (package data) and a FLOP report, equal to the checkout's; and the warning a missing kernel gives
there is the one pytest.ini filters.

The install builds no extension (``MMMSVMAMBA_WITH_OPS=0``): the op's build is what ``make build`` and tests/ops
prove, and a C++ build here would cost minutes of every test run; the FLOP report runs on the meta device, which
needs no kernel. The sources are copied first (setup.py, requirements/, mmmsvmamba/ without built libraries), so
that the in-tree build writes nothing into the checkout and no built file of the checkout can stand in for an
installed one. The report runs with ``python -S`` (see below).
"""
import configparser
import json
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from mmmsvmamba.analysis.flops import flop_report
from mmmsvmamba.analysis.published import official_speeds, published_figures

ROOT = Path(__file__).resolve().parents[2]
REPORT = """
import json, warnings, mmmsvmamba, torch
from mmmsvmamba.ops.backend import resolve_backend
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    backend = resolve_backend('auto', torch.device('cpu'))  # built without the op: the warning of a missing kernel
from mmmsvmamba.analysis.flops import flop_report
from mmmsvmamba.analysis.published import official_speeds, published_figures
report = flop_report('nano')
print(json.dumps(dict(
    file=mmmsvmamba.__file__, names=list(published_figures()),
    top1={name: entry.metrics['top1'].value for name, entry in published_figures().items() if 'top1' in entry.metrics},
    speeds={f'{arch} {mode}': speed.img_s for (arch, mode), speed in official_speeds().items()},
    flops=report['flops'], official=report.get('official'), backend=backend,
    warnings=[str(w.message) for w in caught])))
"""


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    scratch = tmp_path_factory.mktemp('installed')
    source, target, elsewhere = scratch / 'source', scratch / 'site', scratch / 'elsewhere'
    source.mkdir()
    shutil.copy(ROOT / 'setup.py', source / 'setup.py')
    shutil.copytree(ROOT / 'requirements', source / 'requirements')
    shutil.copytree(ROOT / 'mmmsvmamba', source / 'mmmsvmamba', ignore=shutil.ignore_patterns('*.so', '__pycache__'))
    proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--no-index',
                           '--quiet', '--target', str(target), str(source)], capture_output=True, text=True,
                          env=dict(os.environ, MMMSVMAMBA_WITH_OPS='0'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    elsewhere.mkdir()
    # -S: no .pth files, so a development install's editable finder cannot lend the checkout's modules (or built
    # libraries) to the installed package; the environment's site-packages come after the target instead
    path = os.pathsep.join([str(target)] + site.getsitepackages())
    proc = subprocess.run([sys.executable, '-S', '-c', REPORT], cwd=elsewhere, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return target, json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_installed_package_is_the_one_imported(installed):
    target, result = installed
    assert Path(result['file']).parent == target / 'mmmsvmamba'
    assert sorted(p.name for p in (target / 'mmmsvmamba' / 'analysis').glob('*.yml')) == [
        'metafile.yml', 'published_peers.yml']


def test_installed_published_figures_are_the_checkouts(installed):
    _, result = installed
    figures = published_figures()
    assert result['names'] == list(figures)
    assert result['top1'] == {name: entry.metrics['top1'].value for name, entry in figures.items()
                              if 'top1' in entry.metrics}
    assert result['speeds'] == {f'{arch} {mode}': speed.img_s for (arch, mode), speed in official_speeds().items()}
    assert result['speeds'] == {'tiny infer': 2276.05, 'tiny train': 777.30}


def test_installed_flop_report_is_the_checkouts_with_the_official_figure(installed):
    _, result = installed
    report = flop_report('nano')
    assert result['flops'] == report['flops'] and result['official'] == report['official']
    assert result['official']['gflops'] == pytest.approx(0.882952)


def test_pytest_ini_filters_the_warning_a_missing_kernel_gives(installed):
    """The one warning pytest.ini silences is the text the package really emits (here: installed without the op)."""
    _, result = installed
    assert result['backend'] == 'torch' and len(result['warnings']) == 1, result['warnings']
    config = configparser.ConfigParser()
    config.read(ROOT / 'pytest.ini')
    patterns = [line.strip().split(':')[1] for line in config['pytest']['filterwarnings'].splitlines()
                if line.strip().startswith('ignore:')]
    assert any(re.match(pattern, result['warnings'][0], re.I) for pattern in patterns), (patterns, result['warnings'])
