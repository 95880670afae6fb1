"""mmmsvmamba.cli: a user's mistake is one line and status 2, a bug keeps its traceback."""
import argparse
import sys

import pytest

from mmmsvmamba.cli import UsageError, existing_file, positive_int, run, usage_errors


def test_a_usage_error_is_one_line_and_status_2(capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['/somewhere/tools/train.py'])

    def main(argv):
        raise UsageError('config file not found: x.py')

    assert run(main) == 2
    assert capsys.readouterr().err == 'train.py: error: config file not found: x.py\n'


def test_main_gets_argv_and_its_status_is_returned():
    assert run(lambda argv: None, ['a']) == 0
    assert run(lambda argv: len(argv), ['a', 'b']) == 2


@pytest.mark.parametrize('error', [RuntimeError('a bug'), FileNotFoundError('inside the model'), KeyError('k')])
def test_anything_else_is_a_bug_and_propagates(error):
    def main(argv):
        raise error

    with pytest.raises(type(error)):
        run(main)


def test_usage_errors_turns_only_the_named_types():
    with pytest.raises(UsageError, match='^no such file$') as info:
        with usage_errors(FileNotFoundError, ValueError):
            raise FileNotFoundError('no such file')
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(TypeError), usage_errors(FileNotFoundError):
        raise TypeError('a bug')


def test_existing_file_and_positive_int(tmp_path):
    (tmp_path / 'a.pth').write_bytes(b'')
    assert existing_file('checkpoint', str(tmp_path / 'a.pth')) == str(tmp_path / 'a.pth')
    assert existing_file('checkpoint', None) is None
    with pytest.raises(UsageError, match='^checkpoint not found: .*b.pth$'):
        existing_file('checkpoint', str(tmp_path / 'b.pth'))
    with pytest.raises(UsageError, match='checkpoint not found'):
        existing_file('checkpoint', str(tmp_path))  # a folder is not a checkpoint
    assert positive_int('3') == 3
    for text, message in (('0', '0 is not above 0'), ('x', "'x' is not a whole number")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            positive_int(text)
