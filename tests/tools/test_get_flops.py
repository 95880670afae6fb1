"""tools/get_flops.py as a command: JSON and table output, and one-line errors with exit status 2. The counting
itself is tested in tests/analysis/test_flops.py."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.official import facts

ROOT = Path(__file__).resolve().parents[2]


def get_flops(*args, check=True):
    return subprocess.run([sys.executable, 'tools/get_flops.py', *args], cwd=ROOT, capture_output=True, text=True,
                          check=check)


def test_json_output_for_one_and_several_models():
    one = json.loads(get_flops('nano', '--json').stdout)
    assert isinstance(one, dict) and one['params'] == facts('nano')['params_cls_model']
    several = json.loads(get_flops('nano', 'n', '--json', '--shape', '64').stdout)
    assert [r['arch'] for r in several] == ['nano', 'nano'] and several[0]['flops'] == several[1]['flops']
    assert all(r['input_shape'] == [1, 3, 64, 64] for r in several)


def test_table_output():
    out = get_flops('nano', '--depth', '1').stdout
    assert 'FLOPs (official convention)' in out and 'ours +0.00%' in out
    assert 'backbone.layers' not in out  # deeper than --depth 1


@pytest.mark.parametrize('argv, message', [
    (['tiny_v2'], 'neither an MSVMamba arch'),
    (['configs/no_such_config.py'], 'config file not found'),
    (['tiny', '--shape', '224', '224', '3'], 'one or two positive sizes'),
])
def test_errors_name_the_problem(argv, message):
    result = get_flops(*argv, check=False)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.count('\n') == 1 and result.stderr.startswith('get_flops.py: error: ') \
        and message in result.stderr, result.stderr
    if 'arch' in message:
        assert 'tiny_v1' in result.stderr  # lists the valid names
