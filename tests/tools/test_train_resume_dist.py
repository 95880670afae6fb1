"""tools/train.py on the detection demo: a killed run resumes to exactly the uninterrupted result, and
tools/dist_train.sh trains with 2 CPU processes."""
import os
import signal
import socket
import subprocess
import sys
import time

import torch

from .conftest import DEMO_DET, ROOT, demo_options, run_tool


def _state(path):
    # our own checkpoints: read them the way --resume does
    from mmmsvmamba.engine import load_from_local
    return load_from_local(path, map_location='cpu')


def _wait_for_checkpoint(work_dir, name, proc, timeout=420):
    pointer = os.path.join(work_dir, 'last_checkpoint')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(pointer):
            with open(pointer) as f:
                if f.read().strip().endswith(name):
                    return
        if proc.poll() is not None:
            raise AssertionError(f'training ended (status {proc.returncode}) before writing {name}')
        time.sleep(0.2)
    raise AssertionError(f'no {name} after {timeout}s')


def test_killed_run_resumes_to_the_same_final_state(tmp_path, tiny_coco):
    train = [sys.executable, 'tools/train.py', DEMO_DET]
    options = ['--cfg-options', *demo_options(tiny_coco, epochs=3)]
    reference = str(tmp_path / 'uninterrupted')
    run_tool(train + ['--work-dir', reference] + options)

    interrupted = str(tmp_path / 'interrupted')
    proc = subprocess.Popen(train + ['--work-dir', interrupted] + options, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_checkpoint(interrupted, 'epoch_1.pth', proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no clean shutdown: as if the machine went away
        proc.wait()
    assert not os.path.exists(os.path.join(interrupted, 'epoch_3.pth'))

    resumed = run_tool(train + ['--work-dir', interrupted, '--resume'] + options)
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 1' in log or 'resumed epoch: 2' in log

    expected, actual = _state(os.path.join(reference, 'epoch_3.pth')), _state(os.path.join(interrupted, 'epoch_3.pth'))
    assert expected['meta']['epoch'] == actual['meta']['epoch'] == 3
    assert expected['meta']['iter'] == actual['meta']['iter']
    assert expected['state_dict'].keys() == actual['state_dict'].keys()
    different = [k for k in expected['state_dict'] if not torch.equal(expected['state_dict'][k],
                                                                        actual['state_dict'][k])]
    assert not different, f'weights differ after resume: {different[:5]}'
    for e, a in zip(expected['optimizer']['state'].values(), actual['optimizer']['state'].values()):
        assert torch.equal(e['exp_avg'], a['exp_avg']) and torch.equal(e['exp_avg_sq'], a['exp_avg_sq'])
    # and training changed the weights at all (the comparison is not between two untouched models)
    first = _state(os.path.join(reference, 'epoch_1.pth'))['state_dict']
    assert any(not torch.equal(first[k], expected['state_dict'][k]) for k in first)
    # a training checkpoint serves the inference API as it is, message hub and all
    from mmdet.apis import init_detector
    model = init_detector(os.path.join(reference, os.path.basename(DEMO_DET)), os.path.join(reference, 'epoch_3.pth'),
                          device='cpu')
    assert all(torch.equal(v, expected['state_dict'][k]) for k, v in model.state_dict().items())


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_training_on_cpu(tmp_path, tiny_coco):
    work_dir = str(tmp_path / 'dist')
    result = run_tool(['bash', 'tools/dist_train.sh', DEMO_DET, '2', '--work-dir', work_dir, '--cfg-options',
                       *demo_options(tiny_coco, epochs=1)],
                      env_extra=dict(PORT=str(_free_port())))
    log = result.stdout + result.stderr
    assert 'distributed run on CPU with the gloo backend' in log
    assert 'Distributed training: True' in log
    # 12 images, 4 per process and step, 2 processes: 2 steps per epoch instead of 3
    assert 'Epoch(train) [1][2/2]' in log and '[1][3/' not in log
    checkpoint = _state(os.path.join(work_dir, 'epoch_1.pth'))
    # rank 0 writes the file, with both processes' random generator states (for an exact resume)
    assert checkpoint['meta']['iter'] == 2 and len(checkpoint['rng_state']) == 2
    assert all(state['torch'].shape == torch.get_rng_state().shape for state in checkpoint['rng_state'])
