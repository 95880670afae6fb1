"""``python -m mmmsvmamba.ops.check``: what is built, and whether it computes the reference.

Prints the torch / CUDA versions and, per device, which scan backend ``selective_scan_fn`` uses by default; then
runs both compiled ops (forward and backward, on every device that has kernels) against the float64 reference
and prints the largest relative errors. Exits with status 1 if a compiled op disagrees with the reference (beyond
:data:`mmmsvmamba.ops.testing.TOLERANCES`), and with status 2 if a compiled extension that should exist is missing
(``--require-cuda``).
"""
import argparse
import sys

import torch

from . import compiled
from .backend import resolve_backend
from .ms2d_routes import ms2d_half_res_scan
from .selective_scan import selective_scan_fn
from .testing import assert_scan_close, make_scan_inputs


def _run(op, inputs, backend, dy_seed):
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    y = op(**leaves, delta_softplus=True, backend=backend)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(dy_seed), dtype=torch.float64)
    y.backward(dy.to(y.device, y.dtype))
    return [y] + [leaves[k].grad for k in inputs]


def compare(op, device, dtype, spatial, seed=0):
    """Largest |compiled - reference| / max|reference| over the output and all gradients, its name, and the names
    of the results outside the tolerance of their dtype."""
    inputs = make_scan_inputs(2, 8, spatial, dtype=dtype, device=device, seed=seed)
    got = _run(op, inputs, 'compiled', seed)
    ref = _run(op, {k: v.to('cpu', torch.float64) for k, v in inputs.items()}, 'reference', seed)
    names = ['y'] + ['d' + k for k in inputs]
    errors = {name: ((g.double().cpu() - r).abs().max() / r.abs().max().clamp_min(1e-12)).item()
              for name, g, r in zip(names, got, ref)}
    failed = []
    for name, g, r in zip(names, got, ref):
        try:
            assert_scan_close(g, r, name=name)
        except AssertionError:
            failed.append(name)
    worst = max(errors, key=errors.get)
    return errors[worst], worst, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--require-cuda', action='store_true', help='exit 2 if the CUDA kernels are not built')
    args = parser.parse_args(argv)

    print(f'torch {torch.__version__}, CUDA {torch.version.cuda} (runtime available: {torch.cuda.is_available()})')
    if torch.cuda.is_available():
        print(f'device: {torch.cuda.get_device_name()}')
    print(f'compiled kernels for: {", ".join(compiled.KERNEL_KEYS) or "nothing"}')
    compiled.load_emulated()  # to say which file it is; the checks below do not use it
    for module, path in compiled.LOADED.items():
        print(f'  {module}: loaded {path}')
    for module, error in compiled.LOAD_ERRORS.items():
        print(f'  {module}: {error}')
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for device in devices:
        print(f'default scan backend on {device}: {resolve_backend(None, torch.device(device), 1, torch.float32)}')

    failed = False
    for device in devices:
        if not compiled.has_kernel(device):
            continue
        dtypes = [torch.float32, torch.float64] if device == 'cpu' else [torch.float32, torch.float16,
                                                                          torch.bfloat16]
        for dtype in dtypes:
            for name, op, spatial in (('selective_scan_fn', selective_scan_fn, (301,)),
                                      ('ms2d_half_res_scan', ms2d_half_res_scan, (9, 14))):
                error, worst, outside = compare(op, device, dtype, spatial)
                failed |= bool(outside)
                print(f'{"FAIL" if outside else "ok  "} {name:19s} {device:4s} {str(dtype)[6:]:9s} fwd+bwd vs '
                      f'reference: max rel. error {error:.1e} ({worst})' +
                      (f'; outside the tolerance: {", ".join(outside)}' if outside else ''))
    if args.require_cuda and 'CUDA' not in compiled.KERNEL_KEYS:
        print('the CUDA kernels are not built (--require-cuda)')
        return 2
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
