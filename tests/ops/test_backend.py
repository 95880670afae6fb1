"""The dispatch policy's seams: use_backend() blocks, the precedence of backend=, blocks and the environment
variable, and observe_scans() (what a callback sees, that its context wraps the scan, one report per call)."""
import contextlib

import pytest
import torch

from mmmsvmamba.ops import ScanCall, ms2d_half_res_scan, observe_scans, selective_scan_fn, use_backend
from mmmsvmamba.ops import compiled
from mmmsvmamba.ops.backend import ENV_VAR, resolve_backend

CPU = torch.device('cpu')
DEFAULT = 'compiled' if compiled.has_kernel('cpu') else 'torch'


def _inputs(batch=2, dim=3, spatial=(5,), d_state=1):
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(batch, dim, *spatial, generator=gen)
    bc = torch.randn(batch, 1, d_state, *spatial, generator=gen)
    return dict(u=u, delta=torch.rand(batch, dim, *spatial, generator=gen), A=-torch.rand(dim, d_state, generator=gen),
                B=bc, C=bc.flip(-1), D=torch.ones(dim))


def test_blocks_nest_and_an_argument_wins(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_backend(None, CPU) == DEFAULT
    with use_backend('torch'):
        assert resolve_backend(None, CPU) == 'torch'
        with use_backend('reference'):
            assert resolve_backend(None, CPU) == 'reference'
            assert resolve_backend('torch', CPU) == 'torch'
        assert resolve_backend(None, CPU) == 'torch'
    assert resolve_backend(None, CPU) == DEFAULT


def test_a_block_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'reference')
    assert resolve_backend(None, CPU) == 'reference'
    with use_backend('torch'):
        assert resolve_backend(None, CPU) == 'torch'


def test_block_is_closed_after_an_exception():
    with pytest.raises(KeyError):
        with use_backend('reference'):
            raise KeyError
    assert resolve_backend(None, CPU) != 'reference' or DEFAULT == 'reference'


@pytest.mark.parametrize('where', ['use_backend', 'argument', 'environment'])
def test_unknown_backends_name_the_choices(where, monkeypatch):
    with pytest.raises(ValueError, match="unknown selective-scan backend 'fast'.*'compiled'"):
        if where == 'use_backend':
            with use_backend('fast'):
                pass
        elif where == 'argument':
            resolve_backend('fast', CPU)
        else:
            monkeypatch.setenv(ENV_VAR, 'fast')
            resolve_backend(None, CPU)


def test_the_block_decides_what_runs():
    """'reference' and 'torch' agree to rounding; the block really switches the implementation (call observed)."""
    inputs = _inputs()
    seen = []
    with observe_scans(lambda call: seen.append(call.backend)):
        with use_backend('reference'):
            ref = selective_scan_fn(**inputs)
        with use_backend('torch'):
            fast = selective_scan_fn(**inputs)
    assert seen == ['reference', 'torch']
    torch.testing.assert_close(ref, fast)


def test_observers_see_each_call_once_with_its_shapes():
    seq, maps = _inputs(spatial=(7,)), _inputs(spatial=(3, 4))
    calls = []
    with observe_scans(calls.append), use_backend('torch'):  # the torch half-res path scans via the sequence path
        selective_scan_fn(**seq)
        ms2d_half_res_scan(**maps, sum_routes=False)
    assert calls == [ScanCall('selective_scan', 'torch', 2, 3, 7, 1, True),
                     ScanCall('ms2d_half_res_scan', 'torch', 2, 3, 36, 1, True, (3, 4), False)]
    selective_scan_fn(**seq)
    assert len(calls) == 2  # the block is closed


def test_an_observers_context_wraps_the_scan():
    events = []

    @contextlib.contextmanager
    def around(call):
        events.append('enter')
        yield
        events.append('exit')

    class Tracer(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            events.append('op')
            return func(*args, **(kwargs or {}))

    inputs = _inputs()
    with observe_scans(around), Tracer():
        selective_scan_fn(**inputs, backend='torch')
    assert events[0] == 'enter' and events[-1] == 'exit' and 'op' in events[1:-1]


def test_seams_trace_under_dynamo_without_graph_breaks():
    inputs = _inputs()

    def run(u):
        return selective_scan_fn(**dict(inputs, u=u))

    with use_backend('torch'):
        compiled_run = torch.compile(run, backend='eager', fullgraph=True)
        torch.testing.assert_close(compiled_run(inputs['u']), run(inputs['u']))
