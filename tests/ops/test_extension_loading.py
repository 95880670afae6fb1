"""The compiled extensions come from the imported package's own folder: a checkout without binaries says they are not
built and never loads another checkout's (the environment has one installed in editable mode), and
``python -m mmmsvmamba.ops.check`` names the file of each extension it loaded."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mmmsvmamba
from mmmsvmamba.ops import compiled

PACKAGE = Path(mmmsvmamba.__file__).resolve().parent


def _run_in_copy(tmp_path, *args):
    """Runs python with ``args`` in a copy of the package that has no compiled files; returns its stdout."""
    shutil.copytree(PACKAGE, tmp_path / 'mmmsvmamba', ignore=shutil.ignore_patterns('*.so', '__pycache__'))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_checkout_without_binaries_loads_none(tmp_path):
    out = _run_in_copy(tmp_path, '-c', 'import mmmsvmamba; from mmmsvmamba.ops import compiled; '
                       'print(mmmsvmamba.__file__); print(compiled.KERNEL_KEYS); print(sorted(compiled.LOADED)); '
                       'print(compiled.load_emulated()); print(compiled.LOAD_ERRORS["mmmsvmamba._C"])')
    package_file, keys, loaded, emulated, error = out.splitlines()
    assert Path(package_file).parent == tmp_path / 'mmmsvmamba'
    assert (keys, loaded, emulated) == ('()', '[]', 'False')
    assert error == f'not built (no _C.*.so in {tmp_path / "mmmsvmamba"})'


def test_check_names_the_loaded_files(tmp_path):
    out = _run_in_copy(tmp_path, '-m', 'mmmsvmamba.ops.check')
    assert f'  mmmsvmamba._C: not built (no _C.*.so in {tmp_path / "mmmsvmamba"})' in out.splitlines()
    assert ': loaded ' not in out


def test_loaded_files_sit_beside_this_package():
    assert compiled.LOADED, 'this checkout has no compiled extension to check'
    for module, path in compiled.LOADED.items():
        assert Path(path).parent == PACKAGE and Path(path).name.startswith(module.rpartition('.')[2] + '.'), path
