"""RNGStateHook's state capture: exact round trip, weights-only serialisable."""
import random

import numpy as np
import torch

from mmmsvmamba.engine import get_rng_state, set_rng_state


def _draw():
    return random.random(), float(np.random.rand()), np.random.randn(), torch.rand(3).tolist()


def test_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = get_rng_state()
    expected = _draw()
    torch.save(dict(rng_state=[state]), tmp_path / 'c.pth')
    _draw()
    restored = torch.load(tmp_path / 'c.pth', weights_only=True)['rng_state'][0]
    set_rng_state(restored)
    assert _draw() == expected
