"""The GPU report without a GPU (the report itself needs one): ``--list`` prints every owed step with its command,
the preparation runs under an interpreter without OpenMMLab up to the point where a device is needed, the runner
kills a step that overruns and keeps its output, sanitizer hazards fail a step, the checks catch a wrong model,
the tables come out in docs/benchmarks.md's form, and the tool refuses to run the report without CUDA."""
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch

from mmmsvmamba.analysis import gpu_report as report
from mmmsvmamba.analysis.gpu_checks import fixture_equivalence
from mmmsvmamba.analysis.official import check_clone, patch_reverse_scan

ROOT = report.ROOT
OPENMMLAB = ('mmcv', 'mmdet', 'mmengine', 'mmpretrain', 'mmseg')
STEPS = ['build', 'build official', 'ops.check --require-cuda', 'pytest tests/ops (CUDA)',
         'fixture on CUDA (fp32, TF32 off)', 'MSVMamba-T CUDA vs CPU kernels', 'AMP fp16 / bf16 training',
         'compute-sanitizer memcheck', 'compute-sanitizer racecheck', 'compute-sanitizer synccheck', 'copy bandwidth',
         'scan benchmark float32', 'scan benchmark bfloat16', 'classifier benchmark', 'detection backbone step',
         'classifier benchmark, torch.compile']


def tool(*args, env=None, python=(sys.executable, )):
    return subprocess.run([*python, 'tools/gpu_report.py', *args], cwd=ROOT, capture_output=True, text=True,
                          env=env or dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])))


def test_list_prints_every_step_with_its_command(tmp_path):
    result = tool('--list', '--official', 'CLONE', '--out', str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split('. ', 1)[1].split(' (timeout')[0] for line in lines] == STEPS
    by_name = dict(zip(STEPS, lines))
    assert 'TORCH_CUDA_ARCH_LIST=' in by_name['build'] and 'setup.py build_ext --inplace' in by_name['build']
    assert "-k 'cuda and not emulated'" in by_name['pytest tests/ops (CUDA)'] and ' -x' not in result.stdout
    for name in ('classifier benchmark', 'classifier benchmark, torch.compile'):
        assert '--amp fp16 --bs 128 --res 224' in by_name[name] and '--official-scratch' in by_name[name]
    assert '--compile' in by_name['classifier benchmark, torch.compile']
    assert '--compile' not in by_name['classifier benchmark']
    for tool_name in report.SANITIZER_TOOLS:
        line = by_name[f'compute-sanitizer {tool_name}']
        assert f'--tool {tool_name}' in line and all(case in line for case in report.SANITIZER_CASES)
    assert 'build official' not in tool('--list').stdout  # only with a clone


def test_every_step_runs_something_that_exists(tmp_path):
    for step in report.steps(tmp_path, (9, 0), official='CLONE'):
        scripts = [part for part in step.command if part.endswith('.py')]
        assert all((ROOT / script).is_file() for script in scripts), step.command
        if '--check' in step.command:
            assert step.command[step.command.index('--check') + 1] in report.CHECKS
        assert step.minimum <= step.timeout <= report.DEFAULT_BUDGET


def _site_without_openmmlab(folder: Path) -> Path:
    """A folder of links to every installed package except OpenMMLab's (and the editable install of this repo)."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()['purelib']).iterdir():
        if not entry.name.startswith(OPENMMLAB + ('mmmsvmamba', '__editable__')):
            (folder / entry.name).symlink_to(entry)
    return folder


def test_preparation_runs_without_openmmlab(tmp_path):
    site = _site_without_openmmlab(tmp_path / 'site')
    env = dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{site}')
    python = (sys.executable, '-S')  # no site: only the folders of PYTHONPATH
    for package in OPENMMLAB:  # the premise: none of them can be imported there
        absent = subprocess.run([*python, '-c', f'import {package}'], env=env, capture_output=True, text=True)
        assert 'ModuleNotFoundError' in absent.stderr, package
    result = tool('--prepare', '--out', str(tmp_path / 'out'), env=env, python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'collected' in result.stdout and result.stdout.strip().endswith('every further step needs a CUDA device')


def test_runner_kills_an_overrunning_step_and_keeps_its_output(tmp_path):
    step = report.Step('slow', [sys.executable, '-u', '-c', 'import time; print("started"); time.sleep(60)'], 60, 1)
    code, output = report._run(step, 3, tmp_path / 'slow.log')
    assert code is None and output == 'started\n'
    assert report._status(step, code, output).startswith('TIMEOUT')


def test_steps_within_the_budget_keep_what_they_did(tmp_path):
    """A passing step's figures, a failing step, a background step, one killed at the deadline and one skipped:
    the report files say each, as they stood after every step."""
    def python(code):
        return [sys.executable, '-u', '-c', code]
    chosen = [
        report.Step('background', python('import time; time.sleep(1); print("built")'), 30, 1, background=True),
        report.Step('figures', python(f'open({str(tmp_path / "f.json")!r}, "w").write(\'{{"x": 2}}\')'), 30, 1,
                    result='f.json'),
        report.Step('failing', python('import sys; print("boom"); sys.exit(3)'), 30, 1),
        report.Step('overrun', python('import time; print("half"); time.sleep(60)'), 30, 1),
        report.Step('no time left', python('print("never")'), 30, 1)]
    result = dict(device='cpu', torch='', cuda='', steps=[], results={})
    report.run_steps(chosen, tmp_path, result, time.monotonic() + 8)
    status = {step['name']: step['status'] for step in result['steps']}
    assert status['background'] == 'ok' and status['figures'] == 'ok' and status['failing'] == 'FAILED (exit 3)'
    assert status['overrun'].startswith('TIMEOUT') and status['no time left'].startswith('skipped')
    written = json.loads((tmp_path / 'gpu_report.json').read_text())
    assert written['results'] == {'figures': {'x': 2}}
    assert [step['status'] for step in written['steps']] == list(status.values())
    assert 'built' in written['steps'][0]['output'] and 'half' in written['steps'][3]['output']
    assert '| failing | FAILED (exit 3) |' in (tmp_path / 'gpu_report.md').read_text()


@pytest.mark.parametrize('output, failed', [
    ('========= ERROR SUMMARY: 0 errors\n', False),
    ('========= RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings)\n', True),
    ('========= ERROR SUMMARY: 1 error\n', True),
    ('no summary at all\n', True)])
def test_sanitizer_hazards_fail_the_step(output, failed):
    step = report.Step('compute-sanitizer racecheck', ['compute-sanitizer'], 10, 1)
    assert report._status(step, 0, output).startswith('FAILED') == failed


def test_fixture_check_passes_the_official_outputs_and_catches_a_wrong_one(tmp_path):
    errors = fixture_equivalence(str(report.FIXTURE), device='cpu')  # the check's code; on a GPU, device cuda
    assert len(errors) == 10 and max(errors.values()) < 1e-5
    data = torch.load(report.FIXTURE, weights_only=True)
    data['backbone']['outputs_nonsquare'][2] = data['backbone']['outputs_nonsquare'][2] + 1e-3
    torch.save(data, tmp_path / 'wrong.pt')
    with pytest.raises(AssertionError, match='stage2_nonsquare'):
        fixture_equivalence(str(tmp_path / 'wrong.pt'), device='cpu')


def test_reverse_scan_patch_for_cuda13():
    source = ('#pragma once\nnamespace x {\n/** doc */\ntemplate <typename T>\nstruct W {\n'
              '  W() : lane(cub::LaneId()) {}\n  void f() { cub::CTA_SYNC(); }\n};\n}\n')
    patched = patch_reverse_scan(source)
    assert 'cub::' not in patched and '__syncthreads();' in patched and '%%laneid' in patched
    assert patched.index('mmmsvmamba_lane_id() {') < patched.index('template <typename T>')
    with pytest.raises(ValueError, match='unknown kernel source'):
        patch_reverse_scan('template <typename T> struct W {};')


def test_official_needs_a_clone_with_both_commits(tmp_path):
    with pytest.raises(ValueError, match='no such folder'):
        check_clone(tmp_path / 'missing')
    subprocess.run(['git', 'init', '-q', str(tmp_path)], check=True)
    with pytest.raises(ValueError, match='holding commit fca4a39'):
        check_clone(tmp_path)
    result = tool('--prepare', '--official', str(tmp_path / 'missing'), '--out', str(tmp_path / 'out'))
    assert result.returncode == 2 and 'no such folder' in result.stderr and result.stderr.count('\n') == 1


@pytest.mark.skipif(not os.environ.get('MMMSVMAMBA_OFFICIAL_CLONE'), reason='set MMMSVMAMBA_OFFICIAL_CLONE to a '
                    'clone of YuHengsss/MSVMamba (and have timm installed) to run the official code on CPU')
def test_official_smoke(tmp_path):
    result = tool('--official-smoke', os.environ['MMMSVMAMBA_OFFICIAL_CLONE'], '--out', str(tmp_path))
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])
    assert smoke == dict(params=32_263_720, logits_shape=[1, 1000], finite=True, scan_calls=30, guard_refused=True)


def test_markdown_tables():
    scan = ('noise\n# selective scan, float32\n| shape | stage | op | input | pass | time (ms) | GB/s | ns |\n'
            '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
            '| cls b128 | 1 | fn | (1) | fwd | 1.00 | 2000.0 | 0.1 |\n')
    rows = [dict(model='tiny', mode='infer_amp_fp16', bs=128, img_s=6000.0, peak_MB=1000.0, source='torch'),
            dict(model='official v3 Tiny', mode='infer_amp_fp16', bs=128, img_s=2000.0, peak_MB=2000.0,
                 source='official')]
    result = dict(device='NVIDIA H200', torch='2.11.0', cuda='13.0', steps=[
        dict(name='build', status='ok', seconds=91.0, output=''),
        dict(name='compute-sanitizer racecheck', status='skipped (20 s of the budget left, needs 30 s)', seconds=0.0,
             output=''),
        dict(name='scan benchmark float32', status='ok', seconds=30.0, output=scan)],
        results={'copy bandwidth': dict(gb_per_s=4000.0), 'classifier benchmark': dict(results=rows),
                 'detection backbone step': dict(results=[dict(model='MSVMamba-T', ms=50.0, peak_MB=3000.0)])})
    text = report.to_markdown(result)
    assert '| build | ok | 91 |' in text and '| compute-sanitizer racecheck | skipped' in text and 'noise' not in text
    assert '| cls b128 | 1 | fn | (1) | fwd | 1.00 | 2000.0 | 0.1 | 50 |' in text and 'copy, measured' in text
    assert '| tiny | infer_amp_fp16 | no | 128 | 6000.0 | 1000 | 3.00x / 0.50x |' in text
    assert '| MSVMamba-T | 50.0 | 3000 |' in text


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a machine without CUDA')
def test_refuses_without_a_gpu():
    result = tool('--out', 'unused')
    assert result.returncode == 2 and 'no CUDA device' in result.stderr and result.stderr.count('\n') == 1
