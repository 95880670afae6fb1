"""Deployment of MSVMamba models: ONNX export with the scan ops in standard ONNX, and ONNX Runtime inference.

    from mmmsvmamba.deploy import build_model, export_onnx, build_session, ort_infer_step
    model = build_model(arch='tiny')                        # or config=..., checkpoint=...
    export_onnx(model, 'msvmamba_t.onnx')                   # dynamic batch, height and width
    session = build_session('msvmamba_t.onnx', threads=2)   # stock onnxruntime, CPU

Needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (``requirements/deploy.txt``); they are imported when first
used, so ``import mmmsvmamba.deploy`` works without them. See docs/deploy.md.
"""
from .export import DeployError, build_model, export_onnx

__all__ = ['DeployError', 'build_model', 'export_onnx', 'build_session', 'run',
           'ort_infer_step']


def __getattr__(name):
    if name in ('build_session', 'run', 'ort_infer_step'):
        from . import onnxruntime
        return getattr(onnxruntime, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
