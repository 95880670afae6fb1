"""FLOPs and parameters of MSVMamba classifiers, detectors and segmentors, counted the way the official code did.

Convention (fvcore's, which every official MSVMamba number uses; see docs/benchmarks.md):

* one multiply-add is one FLOP; convolutions (bias not counted), linear layers, matmul and einsum count MACs;
* layer/group norm 5 per element (4 without affine), batch norm 1 per element in eval (2 with affine) and 5/4 in
  training, nearest upsampling 1 and bilinear 4 per output element, adaptive average pooling and means 1 per input
  element; everything else (activations, elementwise ops, softmax, copies) counts 0;
* each selective-scan call counts 9*B*L*D*N + B*D*L (the D-skip term; no z term inside the scan).

The official code applies the half-resolution route's x_proj and dt_proj to each of its 3 route sequences
(3*Hb*Wb positions); mmmsvmamba computes them once per map position (Hb*Wb) and reuses them, which is the same
function. ``flops`` follows the official convention (adds the two route copies back, op ``ssm_proj_route_copies``)
so that it is comparable with the published numbers; ``flops_real`` is what mmmsvmamba computes.

:class:`FlopCounter` runs a model under a ``TorchDispatchMode``, so it sees the ATen ops of any model (mmdet,
mmseg, mmpretrain, torchvision); the scans are counted analytically through :func:`mmmsvmamba.ops.observe_scans`,
whatever backend runs them. :func:`flop_report` counts an arch or a config: on the meta device (shapes only,
fast), except detectors, which run on CPU because the number of proposals reaching their RoI heads depends on
real scores. Compiled mmcv ops (RoIAlign, NMS) are invisible to it, as they are to fvcore.
"""
import contextlib
import math
import os
from collections import Counter, defaultdict
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..models import MSVMamba
from ..models.layers import Conv1x1, Linear2d
from ..models.ms2d import MS2D
from ..ops import ScanCall, observe_scans
from ..ops.ms2d_routes import NUM_ROUTES
from .models import TASK_SHAPES, build_classifier, canonical_arch
from .published import published_gflops

__all__ = ['FlopCounter', 'flop_report', 'ms2d_scan_accounting', 'scan_flops']

# What the official per-operator table calls our operator groups (official_facts.json "gflops_224_by_op"):
# v3 realises x_proj/dt_proj as conv1d, v1 as einsum.
OFFICIAL_OP_GROUPS = {
    'v3': {'conv': ('conv', 'ssm_proj', 'ssm_proj_route_copies'), 'linear': ('linear',),
           'layer_norm': ('layer_norm',), 'PythonOp.SelectiveScanOflex': ('selective_scan',),
           'upsample_nearest2d': ('upsample_nearest2d',), 'adaptive_avg_pool2d': ('adaptive_avg_pool2d',)},
    'v1': {'conv': ('conv',), 'linear': ('linear',), 'einsum': ('ssm_proj', 'ssm_proj_route_copies'),
           'layer_norm': ('layer_norm',), 'PythonOp.SelectiveScan': ('selective_scan',),
           'upsample_bilinear2d': ('upsample_bilinear2d',), 'adaptive_avg_pool2d': ('adaptive_avg_pool2d',)},
}
ROUTE_COPIES = 'ssm_proj_route_copies'
# the model a published figure of each task is for: the ImageNet classifier, Mask R-CNN, UperNet
OFFICIAL_KINDS = {'mmpretrain': ('classifier', ), 'mmdet': ('MaskRCNN', ), 'mmseg': ('EncoderDecoder', )}
CONVENTION = ('fvcore (one multiply-add = one FLOP); selective scan 9*B*L*D*N + B*D*L per call; '
              'x_proj/dt_proj on each of the 3 half-resolution route sequences, as the official code')


# ----------------------------------------------------------------------------------------------------------------
# Operator formulas (fvcore's jit handles, written against ATen ops)

def _conv(args, kwargs, out):
    x, weight = args[0], args[1]
    transposed = args[6] if len(args) > 6 else kwargs.get('transposed', False)
    return x.shape[0] * weight.numel() * math.prod((x if transposed else out).shape[2:])


def _matmul(first, second):
    return lambda args, kwargs, out: args[first].numel() * args[second].shape[-1]


def _norm(weight_index):
    return lambda args, kwargs, out: args[0].numel() * (5 if args[weight_index] is not None else 4)


def _batch_norm(args, kwargs, out):
    # the first bool after (input, weight, bias) is `training`; the no_training overload has none
    training = next((a for a in args[3:] if isinstance(a, bool)), False)
    affine = args[1] is not None
    if training:
        return args[0].numel() * (5 if affine else 4)
    return args[0].numel() * (2 if affine else 1)


def _per_output(factor):
    return lambda args, kwargs, out: out.numel() * factor


def _per_input(args, kwargs, out):
    return args[0].numel()


def _attention(args, kwargs, out):
    query, key, value = args[:3]  # (..., L, E), (..., S, E), (..., S, Ev): scores and the weighted sum
    return query.numel() // query.shape[-1] * key.shape[-2] * (query.shape[-1] + value.shape[-1])


_FORMULAS = {
    'convolution': ('conv', _conv),
    'mm': ('linear', _matmul(0, 1)),
    'addmm': ('linear', _matmul(1, 2)),
    'bmm': ('matmul', _matmul(0, 1)),
    'baddbmm': ('matmul', _matmul(1, 2)),
    'native_layer_norm': ('layer_norm', _norm(2)),
    'native_group_norm': ('group_norm', _norm(1)),
    'native_batch_norm': ('batch_norm', _batch_norm),
    '_native_batch_norm_legit': ('batch_norm', _batch_norm),
    '_native_batch_norm_legit_no_training': ('batch_norm', _batch_norm),
    'cudnn_batch_norm': ('batch_norm', _batch_norm),
    'upsample_nearest2d': ('upsample_nearest2d', _per_output(1)),
    'upsample_bilinear2d': ('upsample_bilinear2d', _per_output(4)),
    # a global average pool reaches ATen as mean(-1, -2); fvcore counts adaptive_avg_pool2d per input element
    'mean': ('adaptive_avg_pool2d', _per_input),
    '_adaptive_avg_pool2d': ('adaptive_avg_pool2d', _per_input),
    'grid_sampler_2d': ('grid_sampler', _per_output(4)),
    '_scaled_dot_product_flash_attention_for_cpu': ('matmul', _attention),
    '_scaled_dot_product_flash_attention': ('matmul', _attention),
    '_scaled_dot_product_efficient_attention': ('matmul', _attention),
    '_scaled_dot_product_cudnn_attention': ('matmul', _attention),
}


def scan_flops(batch: int, dim: int, length: int, d_state: int, with_d: bool) -> int:
    """The official selective-scan FLOP handle: 9*B*L*D*N, plus B*D*L for the D skip connection."""
    return 9 * batch * length * dim * d_state + (batch * dim * length if with_d else 0)


class FlopCounter(TorchDispatchMode):
    """Counts FLOPs per operator group and per module while a model runs inside ``with counter.track(model):``."""

    def __init__(self):
        super().__init__()
        self.by_module = defaultdict(Counter)  # module name ('' = the whole model) -> operator group -> FLOPs
        self.calls = Counter()  # ATen ops that ran and were counted
        self._stack = []  # (name, module) of the modules being run, outermost first
        self._paused = 0
        # (module running the op, operator group) -> group to book it under; lets a model's accounting rename
        # the ops its modules issue directly
        self.regroup = lambda module, group: group

    def add(self, group: str, flops: int):
        group = self.regroup(self.current_module, group)
        # booked on every prefix of the innermost module's name, so that containers that are iterated rather
        # than called (ModuleList, the stages) get their share too
        parts = self._stack[-1][0].split('.') if self._stack and self._stack[-1][0] else []
        for end in range(len(parts) + 1):
            self.by_module['.'.join(parts[:end])][group] += flops

    @property
    def current_module(self):
        return self._stack[-1][1] if self._stack else None

    @contextlib.contextmanager
    def paused(self):
        """Hide the ops run inside from the count (they are counted analytically by the caller)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    @contextlib.contextmanager
    def track(self, model: nn.Module):
        """Attribute the FLOPs of ops to the modules of ``model`` that run them, and count while inside."""
        def enter(name):
            def hook(module, args):
                self._stack.append((name, module))
            return hook

        def leave(module, args, output):
            self._stack.pop()

        handles = []
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
        try:
            with self:
                yield self
        finally:
            for handle in handles:
                handle.remove()
            self._stack.clear()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = _FORMULAS.get(func.overloadpacket.__name__) if func.namespace == 'aten' else None
        if formula is not None and not self._paused:
            group, count = formula
            first_out = out[0] if isinstance(out, (tuple, list)) else out
            self.add(group, int(count(args, kwargs, first_out)))
            self.calls[func.overloadpacket.__name__] += 1
        return out


@contextlib.contextmanager
def ms2d_scan_accounting(counter: FlopCounter):
    """Count MS2D's two scan calls with the official handle, whatever backend runs them.

    Every scan is seen through :func:`mmmsvmamba.ops.observe_scans` and runs with the counter paused, so that the
    ops of the PyTorch path (or of a compiled kernel) do not add to the count. The convolutions that MS2D issues
    itself (x_proj, dt_proj) are booked as ``ssm_proj``; for the half-resolution route, the two route copies that
    the official code computes are added as ``ssm_proj_route_copies``; the matmuls of the 1x1 convolutions are
    booked as ``conv``. Raises if MS2D stops calling its scans the way counted here.
    """
    calls, blocks = Counter(), Counter()

    def count_scan(call: ScanCall):
        owner = counter.current_module
        if not isinstance(owner, MS2D):
            raise RuntimeError(f'{call.op} was called outside an MS2D module; the FLOP count covers only the '
                               'scans of mmmsvmamba.models.ms2d.MS2D')
        if call.op == 'ms2d_half_res_scan':
            positions = call.batch * math.prod(call.map_size)
            per_position = owner.x_proj_weight[0].numel() + owner.dt_projs_weight[0].numel()
            counter.add(ROUTE_COPIES, (NUM_ROUTES - 1) * positions * per_position)
        counter.add('selective_scan', scan_flops(call.batch, call.dim, call.length, call.d_state, call.with_D))
        calls[call.op] += 1
        return counter.paused()

    def regroup(module, group):
        # MS2D's only direct products are the x_proj and dt_proj of its two routes
        if group in ('conv', 'linear') and isinstance(module, MS2D):
            return 'ssm_proj'
        # our 1x1 convolutions run as matmuls (mmmsvmamba.models.layers.pointwise); the official code, whose
        # operator table we compare with, runs them as convolutions
        if group == 'linear' and isinstance(module, (Linear2d, Conv1x1)):
            return 'conv'
        return group

    def count_block(module, args):
        if isinstance(module, MS2D):
            blocks['MS2D'] += 1

    previous_regroup = counter.regroup
    hook = nn.modules.module.register_module_forward_pre_hook(count_block)
    try:
        counter.regroup = regroup
        with observe_scans(count_scan):
            yield
    finally:
        counter.regroup = previous_regroup
        hook.remove()
    for op in ('selective_scan', 'ms2d_half_res_scan'):
        if calls[op] != blocks['MS2D']:
            raise RuntimeError(f'{blocks["MS2D"]} MS2D blocks ran but {op} was called {calls[op]} times: the FLOP '
                               'count no longer matches how mmmsvmamba.models.ms2d calls its scans')


# ----------------------------------------------------------------------------------------------------------------
# Reports

def _forward_fn(model: nn.Module, scope: str, images: torch.Tensor):
    """A closure that runs the counted forward pass: mode 'tensor', as the official tool and mm*'s get_flops do.

    Detection runs the RPN on the images and the RoI heads on its proposals (box head on all of them, mask head
    on the first 100), so the count depends on the number of proposals; the closure returns it (else None).
    """
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        size = tuple(images.shape[-2:])
        samples = [DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                                               batch_input_shape=size, scale_factor=(1.0, 1.0)))
                   for _ in range(images.shape[0])]

        def run():
            outputs = model(images, samples, mode='tensor')
            roi_outputs = outputs[-1] if hasattr(model, 'roi_head') else None
            return roi_outputs[0].shape[0] if roi_outputs else None
        return run

    def run():
        if scope == 'mmseg':
            model(images, None, mode='tensor')
        else:
            model(images)
    return run


def input_size(shape: Optional[Sequence[int]], default):
    """(H, W) from one or two positive sizes, or ``default`` when none are given."""
    if not shape:
        return default
    if len(shape) > 2 or min(shape) <= 0:
        raise ValueError(f'--shape takes one or two positive sizes (H [W]), got {list(shape)}')
    return (shape[0], shape[-1])


def _config_arch(cfg):
    """The canonical MSVMamba arch name of a config's backbone, or None for another backbone or an arch dict."""
    backbone = cfg.model.get('backbone', {})
    arch = backbone.get('arch', 'tiny') if backbone.get('type') == 'MSVMamba' else None
    return canonical_arch(arch) if isinstance(arch, str) else None


def _config_api():
    """(load_config, build_model, config_scope) of :mod:`mmmsvmamba.engine.config`, which needs mmengine."""
    try:
        from ..engine.config import build_model, config_scope, load_config
    except ImportError as error:
        raise ImportError(f'a config needs mmengine and the library of its task (mmdet, mmseg or mmpretrain): '
                          f'{error}; install them with `bash tools/setup_env.sh`') from error
    return load_config, build_model, config_scope


def is_config(spec: str) -> bool:
    """Whether a model argument names a config file (else an arch)."""
    return spec.endswith('.py') or os.sep in spec


def flop_report(spec: str, shape: Optional[Sequence[int]] = None, depth: int = 3, seed: int = 0,
                cfg_options: Optional[dict] = None) -> dict:
    """Count params and FLOPs of an arch (its ImageNet classifier at 224x224) or a config (at its task's size).

    Returns a dict with ``flops`` (official convention), ``flops_real`` (what mmmsvmamba computes), ``params``,
    per-operator and per-module FLOPs and, where published, the official figure and our difference from it.
    """
    input_size(shape, None)  # a bad shape fails before a model is built
    torch.manual_seed(seed)  # the detector's proposals, hence its count, depend on the random weights and input
    cfg = None
    if is_config(spec):
        load_config, _, _ = _config_api()
        cfg = load_config(spec, cfg_options)
        scope, arch = cfg.default_scope, _config_arch(cfg)
    else:
        try:
            arch = canonical_arch(spec)
        except ValueError:
            raise ValueError(f'{spec!r} is neither an MSVMamba arch ({", ".join(sorted(MSVMamba.arch_zoo))}) '
                             'nor a config file (*.py)') from None
        scope = 'mmpretrain'
    size = input_size(shape, TASK_SHAPES[scope]['infer'])
    # FLOPs depend on shapes only, so models run on the meta device (no memory, no arithmetic); except detectors:
    # the number of proposals that reach the RoI heads comes from real scores and NMS
    device = 'cpu' if scope == 'mmdet' else 'meta'
    images = torch.randn(1, 3, *size, device=device)
    counter = FlopCounter()
    if cfg is not None:
        _, build_model, config_scope = _config_api()
        scope_context, model = config_scope(scope), build_model(cfg)
    else:
        scope_context, model = contextlib.nullcontext(), build_classifier(arch)
    with scope_context:
        model = model.eval().to(device)
        kind = 'classifier' if scope == 'mmpretrain' else type(model).__name__
        run = _forward_fn(model, scope, images)
        with torch.no_grad(), counter.track(model), ms2d_scan_accounting(counter):
            proposals = run()

    by_op = dict(counter.by_module[''])
    flops = sum(by_op.values())
    backbone = getattr(model, 'backbone', None)
    report = dict(
        model=spec, kind=kind, arch=arch, task=scope, input_shape=list(images.shape), counted_on=device,
        flops=flops, flops_real=flops - by_op.get(ROUTE_COPIES, 0), gflops=round(flops / 1e9, 6),
        params=_params(model), params_backbone=_params(backbone) if backbone else None,
        flops_by_op=dict(sorted(by_op.items(), key=lambda item: -item[1])),
        flops_by_module=_module_table(model, counter, depth),
        counted_aten_ops=dict(counter.calls),
        convention=CONVENTION)
    if proposals is not None:
        report['num_proposals'] = proposals
    if kind == 'classifier' and arch is not None:
        version = MSVMamba.parse_arch(arch)['version']
        report['flops_by_official_op'] = {name: sum(by_op.get(g, 0) for g in groups)
                                          for name, groups in OFFICIAL_OP_GROUPS[version].items()}
    official = published_gflops(scope, arch) if arch is not None and kind in OFFICIAL_KINDS[scope] else None
    if official is not None and tuple(official[1]) == tuple(size):  # published for this input only
        gflops, _, source = official
        report['official'] = dict(gflops=gflops, source=source,
                                  diff_pct=round(100 * (flops / 1e9 - gflops) / gflops, 3))
    return report


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _module_table(model: nn.Module, counter: FlopCounter, depth: int) -> list:
    rows = []
    for name, module in model.named_modules():
        level = name.count('.') + 1 if name else 0
        if level > depth:
            continue
        flops = sum(counter.by_module.get(name, {}).values())
        params = _params(module)
        if flops or params:
            rows.append(dict(module=name or '(model)', params=params, flops=flops))
    return rows
