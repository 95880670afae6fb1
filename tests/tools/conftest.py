"""Shared pieces of the tool tests: a tiny generated COCO set and the options that shrink the demo config."""
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_DET = 'configs/demo/mask_rcnn_msvmamba_demo_shapes.py'


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    from mmmsvmamba.datasets import make_coco
    return make_coco(str(tmp_path_factory.mktemp('data') / 'coco'), num_train=12, num_val=4, seed=3)


def demo_options(coco_root: str, epochs: int) -> list:
    """--cfg-options that point the detection demo at the COCO set in ``coco_root`` and shorten it to ``epochs``."""
    data_root = os.path.dirname(coco_root.rstrip('/'))
    assert os.path.basename(coco_root.rstrip('/')) == 'coco', 'the demo looks for <data root>/coco'
    from mmmsvmamba.engine.demo import data_root_options
    return data_root_options('det', data_root) + [
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        'default_hooks.checkpoint.max_keep_ckpts=-1', 'default_hooks.logger.interval=1'
    ]


def run_tool(args: list, timeout: int = 600, env_extra: dict = None) -> subprocess.CompletedProcess:
    """Run a command from the repository root with this interpreter; fail showing its output.

    The command gets its own process group, killed whole on a time-out, so that no launcher child (torchrun's
    workers) outlives a failed test.
    """
    env = dict(os.environ, PYTHON=sys.executable, **(env_extra or {}))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(f'{" ".join(args)} did not finish in {timeout}s:\n{stdout[-4000:]}\n{stderr[-8000:]}')
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed ({proc.returncode}):\n{stdout[-4000:]}\n{stderr[-8000:]}')
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
