"""Hooks that make a resumed run identical to an uninterrupted one, and measure the untrained model.

mmengine restores weights, optimizer, schedulers and counters on ``--resume`` but not the random number
generators, so the data order is right and everything random after it (drop-path masks, the RPN/RoI samplers,
augmentations done in the main process) takes another path. :class:`RNGStateHook` closes that gap.
"""
import random
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def get_rng_state() -> dict:
    """The state of python's, numpy's and torch's global generators, as tensors and plain Python data only.

    (numpy's key array is stored as a tensor so the checkpoint stays loadable by the weights-only unpickler.)
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(python=random.getstate(), torch=torch.get_rng_state(),
                 numpy=(name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                        float(cached_gaussian)))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    """Inverse of :func:`get_rng_state`."""
    python = state['python']
    random.setstate((python[0], tuple(python[1]), python[2]))
    torch.set_rng_state(state['torch'])
    name, keys, pos, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _world() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the random generators in every checkpoint and restore them on resume.

    * ``before_save_checkpoint``: stores every process's generator state under ``checkpoint['rng_state']`` (a
      list indexed by rank). mmengine saves on rank 0 only, so the other ranks' states are gathered after every
      training iteration (one small all-gather; nothing happens there in between that draws random numbers).
    * ``after_load_checkpoint`` when resuming: keeps this rank's state and sets it right before training goes on
      (the next ``before_train_epoch`` / ``before_train_iter``), so whatever runs in between (building
      data loaders, skipping already-seen batches) cannot shift it.
    * Validation is shielded: the generator state before ``before_val`` is put back in ``after_val``, so an
      evaluation (whether it ran or not, e.g. the one right after the checkpoint) never changes training.

    With this hook, a run killed after epoch (or iteration) k and resumed from that checkpoint finishes with the
    same weights as an uninterrupted run, provided it runs on the same number of processes. Iteration-based
    loops additionally need ``num_workers >= 1``: with ``num_workers=0`` the batch after a resume is augmented
    with main-process randomness before any hook runs.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._pending: Optional[dict] = None
        self._before_val: Optional[dict] = None
        self._gathered: Optional[list] = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if _world()[1] > 1:
            self._gathered = all_gather_object(get_rng_state())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        rank, world_size = _world()
        # a checkpoint saved during validation must hold the training state, not validation's
        current = self._before_val if self._before_val is not None else get_rng_state()
        if world_size == 1:
            checkpoint['rng_state'] = [current]
        elif self._gathered is not None:
            states = list(self._gathered)
            states[rank] = current
            checkpoint['rng_state'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return  # load_from: new training, the config's seed decides
        states = checkpoint.get('rng_state')
        rank, world_size = _world()
        if states is None:
            runner.logger.warning('the checkpoint holds no random generator state (not written with RNGStateHook): '
                                  'the resumed run will not repeat the interrupted one exactly')
        elif len(states) != world_size:
            runner.logger.warning(f'the checkpoint was written by {len(states)} processes, this run has {world_size}: '
                                  'random generators are not restored')
        else:
            self._pending = states[rank]

    def _restore_pending(self):
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None

    def before_train_epoch(self, runner) -> None:
        self._restore_pending()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._restore_pending()

    def before_val(self, runner) -> None:
        self._before_val = get_rng_state()

    def after_val(self, runner) -> None:
        set_rng_state(self._before_val)
        self._before_val = None


@HOOKS.register_module()
class ValidateBeforeTrainHook(Hook):
    """Evaluate the model once before the first training step (skipped when resuming).

    The metrics are logged as those of epoch / iteration 0, next to the later ones, so a log shows what training
    added over the initial weights (random, or the pretrained backbone).
    """

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        if runner.iter == 0 and runner.val_loop is not None:
            runner.logger.info('evaluating the model before training')
            runner.val_loop.run()
