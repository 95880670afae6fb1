"""Every tool of this repository answers a user's mistake with one line naming it, `tool.py: error: ...`, and exit
status 2, without a traceback (mmmsvmamba/cli.py). Run as a user runs them (a tool starts in about 6 s here, most of
it importing mmdet, mmseg and mmpretrain, so each kind of mistake is tried once, not with every tool)."""
import os
import re
import subprocess
import sys

import pytest
import torch

from .conftest import ROOT

DET = 'configs/mask_rcnn_msvmamba_n_1x.py'
SEG = 'configs/upernet_msvmamba_m_160k_ade20k.py'
PHOTO = 'tests/data/grace_hopper.jpg'


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('cli')
    (folder / 'wrong_scope.py').write_text("default_scope = 'mmfoo'\nmodel = dict(type='Foo')\n")
    (folder / 'empty.pth').write_bytes(b'')
    (folder / 'junk.pth').write_bytes(b'not a checkpoint')
    torch.save({'weight': torch.ones(2)}, folder / 'tensors.pth')
    (folder / 'a_file').write_text('')
    return folder


# (tool and arguments, with {tmp} for the folder above; what the one line says after 'tool.py: error: ')
CASES = [
    ('train.py configs/nope.py', 'config file not found: configs/nope.py'),
    ('train.py {tmp}/wrong_scope.py', r"{tmp}/wrong_scope.py: default_scope must be one of .* got 'mmfoo'"),
    (f'train.py {DET} --cfg-options model.backbone.arch=huge', "unknown MSVMamba arch 'huge'; choose one of"),
    (f'train.py {DET} --cfg-options train_dataloader.dataset.data_root=/nonexistent/coco/',
     r'train data not found: /nonexistent/coco/ \(set train_dataloader.dataset.data_root with --cfg-options'),
    (f'train.py {DET} --resume {{tmp}}/missing.pth', '--resume: checkpoint not found: {tmp}/missing.pth'),
    (f'train.py {DET} --launcher pytorch', '--launcher pytorch: RANK and WORLD_SIZE are not set'),
    (f'test.py {DET} {{tmp}}/missing.pth', 'checkpoint not found: {tmp}/missing.pth'),
    (f'test.py {DET} {{tmp}}/empty.pth --tta', f'{DET} defines no tta_model / tta_pipeline'),
    (f'test.py {SEG} {{tmp}}/empty.pth --cfg-options test_dataloader.dataset.data_root=/nonexistent/ade',
     'test data not found: /nonexistent/ade'),
    (f'image_demo.py missing.jpg {DET} --out {{tmp}}/x.jpg', 'image not found: missing.jpg'),
    (f'image_demo.py {PHOTO} {DET} --out {{tmp}}/x.txt', r'--out {tmp}/x.txt: the file name must end in one of'),
    (f'image_demo.py {PHOTO} {DET} --weights {{tmp}}/missing.pth --out {{tmp}}/x.jpg',
     'checkpoint not found: {tmp}/missing.pth'),
    ('make_demo_data.py --num-train 0', 'argument --num-train: 0 is not above 0'),
    ('make_demo_data.py --root {tmp}/a_file', '--root {tmp}/a_file is a file, not a folder'),
    ('convert_checkpoint.py {tmp}/missing.pth {tmp}/out.pth', 'checkpoint not found: {tmp}/missing.pth'),
    ('convert_checkpoint.py {tmp}/junk.pth {tmp}/out.pth', "cannot read checkpoint '{tmp}/junk.pth'"),
    ('convert_checkpoint.py {tmp}/tensors.pth {tmp}/out.pth', 'not an official MSVMamba checkpoint'),
    ('demo.py foo', "argument task: invalid choice: 'foo'"),
    ('export_onnx.py --arch tiny --checkpoint {tmp}/missing.pth {tmp}/x.onnx',
     'checkpoint file not found: {tmp}/missing.pth'),
    (f'export_onnx.py --config {SEG} --backbone-only {{tmp}}/x.onnx', '--backbone-only goes with --arch'),
    ('export_onnx.py --arch {{"version":"v3" {tmp}/x.onnx', 'argument --arch: invalid JSON arch dict'),
    ('export_onnx.py {tmp}/x.onnx', 'one of the arguments --arch --config is required'),
]
if not torch.cuda.is_available():
    CASES.append((f'image_demo.py {PHOTO} {DET} --device cuda --out {{tmp}}/x.jpg',
                  '--device cuda: no CUDA device is available'))


@pytest.mark.parametrize('command, message', CASES, ids=[c for c, _ in CASES])
def test_a_mistake_is_one_line_and_status_2(files, command, message):
    tool, *args = command.format(tmp=files).split()
    result = subprocess.run([sys.executable, os.path.join('tools', tool), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if 'Warning' not in line and line.strip()]
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 or lines[0].startswith('usage:'), result.stderr
    assert re.fullmatch(f'{re.escape(tool)}: error: ' + message.format(tmp=re.escape(str(files))) + '.*', lines[-1]), \
        lines[-1]
