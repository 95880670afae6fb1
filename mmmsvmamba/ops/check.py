"""``python -m mmmsvmamba.ops.check``: what is built, and whether it computes the reference.

Prints the torch / CUDA versions and, per device, which scan backend ``selective_scan_fn`` uses by default; then
runs both compiled ops (forward and backward, on every device that has kernels) against the float64 reference
and prints the largest relative errors. Exits with status 1 if a compiled op disagrees with the reference, and
with status 2 if a compiled extension that should exist is missing (``--require-cuda``).
"""
import argparse
import sys

import torch

from . import compiled
from .backend import resolve_backend
from .ms2d_routes import ms2d_half_res_scan
from .selective_scan import selective_scan_fn

# largest tolerated error relative to the largest reference value, per input dtype
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10, torch.float16: 5e-3, torch.bfloat16: 3e-2}


def _inputs(device, dtype, spatial, gen):
    def rand(*shape, dt=dtype, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift).to(device, dt)

    param = torch.float64 if dtype == torch.float64 else torch.float32
    return dict(u=rand(2, 8, *spatial), delta=rand(2, 8, *spatial, scale=0.5, shift=-1.0),
                A=-torch.exp(rand(8, 1, dt=param, scale=0.5)), B=rand(2, 1, 1, *spatial), C=rand(2, 1, 1, *spatial),
                D=rand(8, dt=param), delta_bias=rand(8, dt=param, scale=0.3))


def _run(op, inputs, backend, dy_seed):
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    y = op(**leaves, delta_softplus=True, backend=backend)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(dy_seed), dtype=torch.float64)
    y.backward(dy.to(y.device, y.dtype))
    return [y] + [leaves[k].grad for k in inputs]


def compare(op, device, dtype, spatial, seed=0):
    """Largest |compiled - reference| / max|reference| over the output and all gradients, and its name."""
    inputs = _inputs(device, dtype, spatial, torch.Generator().manual_seed(seed))
    got = _run(op, inputs, 'compiled', seed)
    ref = _run(op, {k: v.to('cpu', torch.float64) for k, v in inputs.items()}, 'reference', seed)
    names = ['y'] + ['d' + k for k in inputs]
    errors = {name: ((g.double().cpu() - r).abs().max() / r.abs().max().clamp_min(1e-12)).item()
              for name, g, r in zip(names, got, ref)}
    worst = max(errors, key=errors.get)
    return errors[worst], worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--require-cuda', action='store_true', help='exit 2 if the CUDA kernels are not built')
    args = parser.parse_args(argv)

    print(f'torch {torch.__version__}, CUDA {torch.version.cuda} (runtime available: {torch.cuda.is_available()})')
    if torch.cuda.is_available():
        print(f'device: {torch.cuda.get_device_name()}')
    print(f'compiled kernels for: {", ".join(compiled.KERNEL_KEYS) or "nothing"}')
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
                error, worst = compare(op, device, dtype, spatial)
                ok = error <= TOLERANCE[dtype]
                failed |= not ok
                print(f'{"ok  " if ok else "FAIL"} {name:19s} {device:4s} {str(dtype)[6:]:9s} fwd+bwd vs reference: '
                      f'max rel. error {error:.1e} ({worst})')
    if args.require_cuda and 'CUDA' not in compiled.KERNEL_KEYS:
        print('the CUDA kernels are not built (--require-cuda)')
        return 2
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
