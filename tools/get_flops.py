"""Count the FLOPs and parameters of MSVMamba classifiers, detectors and segmentors the way the official code did.

    python tools/get_flops.py MODEL [MODEL ...] [--shape H [W]] [--json] [--depth N] [--cfg-options K=V ...]

MODEL is an arch of ``MSVMamba.arch_zoo`` (nano, micro, tiny_v1, tiny, small, base, or an alias) or a config file.
An arch means the ImageNet classifier (backbone -> global average pooling -> linear head, 1000 classes) at
224x224. A config's ``default_scope`` picks the task and the default input: 224x224 for mmpretrain, (1280, 800)
for mmdet and (512, 2048) for mmseg, as (H, W): the tensors the official tool fed, (1, 3, 1280, 800) and
(1, 3, 512, 2048) (YuHengsss/MSVMamba ``analyze/get_flops.py``).

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

Counting runs the model once under a ``TorchDispatchMode``, so it sees the ATen ops of any model (mmdet, mmseg,
mmpretrain, torchvision): on the meta device (shapes only, fast), except detectors, which run on CPU because the
number of proposals reaching their RoI heads depends on real scores. Compiled mmcv ops (RoIAlign, NMS) are
invisible to it, as they are to fvcore.
"""
import argparse
import contextlib
import importlib.util
import inspect
import json
import math
import os
import sys
import warnings
from collections import Counter, defaultdict

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from mmmsvmamba.models import MSVMamba
from mmmsvmamba.models import ms2d as ms2d_module
from mmmsvmamba.models.layers import Conv1x1, Linear2d
from mmmsvmamba.ops.ms2d_routes import NUM_ROUTES

try:  # only configs need mmengine; arch counts run with torch alone
    from mmengine.config import DictAction
except ImportError:
    DictAction = None

# Published GFLOPs for the "official" column: (model kind, (H, W)) -> arch -> (GFLOPs, source).
_FVCORE = 'the official code counted with fvcore (official_facts.json; the figures its yamls quote)'
_README = 'official README, master branch'
_PAPER = 'NeurIPS 2024 paper'
OFFICIAL_GFLOPS = {
    ('classifier', (224, 224)): dict(nano=(0.882952, _FVCORE), micro=(1.532305, _FVCORE),
                                     tiny_v1=(4.612928, _FVCORE), tiny=(5.133862, _FVCORE),
                                     small=(8.771503, _FVCORE), base=(16.28252, _FVCORE)),
    ('MaskRCNN', (1280, 800)): dict(micro=(201.0, _README), tiny_v1=(252.0, _README),
                                    tiny=(275.0, _PAPER + ' Table 2'), small=(349.0, _PAPER + ' Table 2')),
    ('EncoderDecoder', (512, 2048)): dict(micro=(875.0, _README), tiny_v1=(942.0, _README),
                                          tiny=(953.0, _PAPER + ' Table 3')),
}
DEFAULT_SHAPES = {'mmpretrain': (224, 224), 'mmdet': (1280, 800), 'mmseg': (512, 2048)}
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

    The scan entry points are wrapped where MS2D looks them up, so that the ops of the PyTorch fallback (or of a
    compiled kernel) do not add to the count. The convolutions that MS2D issues itself (x_proj, dt_proj) are
    booked as ``ssm_proj``; for the half-resolution route, the two route copies that the official code computes
    are added as ``ssm_proj_route_copies``; the matmuls of the 1x1 convolutions are booked as ``conv``. Raises if
    MS2D stops calling its scans the way counted here.
    """
    calls, blocks = Counter(), Counter()
    originals = {'selective_scan_fn': ms2d_module.selective_scan_fn,
                 'ms2d_half_res_scan': ms2d_module.ms2d_half_res_scan}
    signatures = {name: inspect.signature(fn) for name, fn in originals.items()}

    def wrap(name):
        def scan(*args, **kwargs):
            bound = signatures[name].bind(*args, **kwargs)
            u, A, D = bound.arguments['u'], bound.arguments['A'], bound.arguments.get('D')
            owner = counter.current_module
            if not isinstance(owner, ms2d_module.MS2D):
                raise RuntimeError(f'{name} was called outside an MS2D module; tools/get_flops.py counts only the '
                                   'scans of mmmsvmamba.models.ms2d.MS2D')
            if name == 'selective_scan_fn':
                length = u.shape[-1]
            else:  # a (B, D, Hb, Wb) map, scanned as NUM_ROUTES concatenated route sequences
                positions = u.shape[0] * u.shape[-2] * u.shape[-1]
                per_position = owner.x_proj_weight[0].numel() + owner.dt_projs_weight[0].numel()
                counter.add(ROUTE_COPIES, (NUM_ROUTES - 1) * positions * per_position)
                length = NUM_ROUTES * u.shape[-2] * u.shape[-1]
            counter.add('selective_scan', scan_flops(u.shape[0], u.shape[1], length, A.shape[1], D is not None))
            calls[name] += 1
            with counter.paused(), warnings.catch_warnings():
                # which backend runs the scan does not change its count; no need to hear about it
                warnings.filterwarnings('ignore', message='mmmsvmamba: the compiled selective-scan op')
                return originals[name](*args, **kwargs)
        return scan

    def regroup(module, group):
        # MS2D's only direct products are the x_proj and dt_proj of its two routes
        if group in ('conv', 'linear') and isinstance(module, ms2d_module.MS2D):
            return 'ssm_proj'
        # our 1x1 convolutions run as matmuls (mmmsvmamba.models.layers.pointwise); the official code, whose
        # operator table we compare with, runs them as convolutions
        if group == 'linear' and isinstance(module, (Linear2d, Conv1x1)):
            return 'conv'
        return group

    def count_block(module, args):
        if isinstance(module, ms2d_module.MS2D):
            blocks['MS2D'] += 1

    previous_regroup = counter.regroup
    hook = nn.modules.module.register_module_forward_pre_hook(count_block)
    try:
        for name in originals:
            setattr(ms2d_module, name, wrap(name))
        counter.regroup = regroup
        yield
    finally:
        for name, fn in originals.items():
            setattr(ms2d_module, name, fn)
        counter.regroup = previous_regroup
        hook.remove()
    for name in originals:
        if calls[name] != blocks['MS2D']:
            raise RuntimeError(f'{blocks["MS2D"]} MS2D blocks ran but {name} was called {calls[name]} times: '
                               'tools/get_flops.py no longer matches how mmmsvmamba.models.ms2d calls its scans')


# ----------------------------------------------------------------------------------------------------------------
# Models

class PlainClassifier(nn.Module):
    """The model-zoo ImageNet classifier in plain PyTorch, for machines without mmpretrain.

    Same layers, parameters and FLOPs as mmpretrain's ``ImageClassifier(backbone=MSVMamba(arch,
    out_indices=(3,)), neck=GlobalAveragePooling, head=LinearClsHead)``; ``outnorm3`` is the official final norm.
    (B, 3, H, W) -> (B, num_classes) logits.
    """

    def __init__(self, arch, num_classes: int = 1000):
        super().__init__()
        self.backbone = MSVMamba(arch, out_indices=(3, ))
        self.neck = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(self.backbone.dims[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(x)[-1]).flatten(1))


def canonical_arch(arch: str) -> str:
    """'t' -> 'tiny': the long name of an arch_zoo entry; a ValueError listing the valid names otherwise."""
    MSVMamba.parse_arch(arch)
    entry = MSVMamba.arch_zoo[arch.lower()]
    return max((name for name, value in MSVMamba.arch_zoo.items() if value is entry), key=len)


def build_classifier(arch: str, num_classes: int = 1000, use_mmpretrain: bool = None) -> nn.Module:
    """The ImageNet classifier of ``arch``: mmpretrain's ImageClassifier when installed, else :class:`PlainClassifier`.

    Both take (B, 3, H, W) and return (B, num_classes) logits when called as ``model(images)``.
    """
    arch = canonical_arch(arch)
    if use_mmpretrain is None:
        use_mmpretrain = importlib.util.find_spec('mmpretrain') is not None
    if not use_mmpretrain:
        return PlainClassifier(arch, num_classes)
    from mmmsvmamba.registry import REGISTERED
    from mmpretrain.registry import MODELS
    if 'mmpretrain' not in REGISTERED:
        raise RuntimeError('mmpretrain is installed but MSVMamba is not registered in it (see mmmsvmamba.registry)')
    return MODELS.build(dict(
        type='ImageClassifier',
        _scope_='mmpretrain',  # whatever default scope an earlier config set
        backbone=dict(type='MSVMamba', arch=arch, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=MSVMamba.parse_arch(arch)['dims'][3])))


def load_config(path: str, options: dict = None):
    """An mmengine Config (with ``options`` merged in, as --cfg-options), with errors that name the problem."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    try:
        from mmengine.config import Config
    except ImportError as error:
        raise ImportError('a config needs mmengine and the library of its task (mmdet, mmseg or mmpretrain); '
                          'install them with `bash tools/setup_env.sh`') from error
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    scope = cfg.get('default_scope')
    if scope not in DEFAULT_SHAPES:
        raise ValueError(f'{path}: default_scope must be one of {sorted(DEFAULT_SHAPES)} (it picks the task), '
                         f'got {scope!r}')
    return cfg


def config_scope(scope: str):
    """A context in which mmengine's default scope is ``scope`` (a config's), restored on exit."""
    from mmengine.registry import DefaultScope
    return DefaultScope.overwrite_default_scope(scope)


def build_from_config(cfg) -> nn.Module:
    """The model of an mmdet / mmseg / mmpretrain config, with its random initialisation."""
    from mmengine.registry import MODELS
    with config_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


def config_arch(cfg):
    """The canonical MSVMamba arch name of a config's backbone, or None for another backbone or an arch dict."""
    backbone = cfg.model.get('backbone', {})
    arch = backbone.get('arch', 'tiny') if backbone.get('type') == 'MSVMamba' else None
    return canonical_arch(arch) if isinstance(arch, str) else None


def forward_fn(model: nn.Module, scope: str, images: torch.Tensor):
    """A closure that runs the counted forward pass: mode 'tensor', as the official tool and mm*'s get_flops do.

    Detection runs the RPN on the images and the RoI heads on its proposals (box head on all of them, mask head
    on the first 100), so the count depends on the number of proposals; it is returned as the second value.
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


# ----------------------------------------------------------------------------------------------------------------
# Analysis

def _input_shape(shape, default):
    if not shape:
        return default
    if len(shape) > 2 or min(shape) <= 0:
        raise ValueError(f'--shape takes one or two positive sizes (H [W]), got {list(shape)}')
    return (shape[0], shape[-1])


def analyze(spec: str, shape=None, depth: int = 3, seed: int = 0, cfg_options: dict = None) -> dict:
    """Count params and FLOPs of an arch (its ImageNet classifier) or a config; see the module docstring.

    Returns a dict with ``flops`` (official convention), ``flops_real`` (what mmmsvmamba computes), ``params``,
    per-operator and per-module FLOPs and, where published, the official figure and our difference from it.
    """
    _input_shape(shape, None)  # a bad --shape fails before a model is built
    torch.manual_seed(seed)  # the detector's proposals, hence its count, depend on the random weights and input
    cfg = None
    if spec.endswith('.py') or os.sep in spec:
        cfg = load_config(spec, cfg_options)
        scope, arch = cfg.default_scope, config_arch(cfg)
    else:
        try:
            arch = canonical_arch(spec)
        except ValueError:
            raise ValueError(f'{spec!r} is neither an MSVMamba arch ({", ".join(sorted(MSVMamba.arch_zoo))}) '
                             'nor a config file (*.py)') from None
        scope = 'mmpretrain'
    size = _input_shape(shape, DEFAULT_SHAPES[scope])
    # FLOPs depend on shapes only, so models run on the meta device (no memory, no arithmetic); except detectors:
    # the number of proposals that reach the RoI heads comes from real scores and NMS
    device = 'cpu' if scope == 'mmdet' else 'meta'
    images = torch.randn(1, 3, *size, device=device)
    counter = FlopCounter()
    with config_scope(scope) if cfg is not None else contextlib.nullcontext():
        model = (build_from_config(cfg) if cfg is not None else build_classifier(arch)).eval().to(device)
        kind = 'classifier' if scope == 'mmpretrain' else type(model).__name__
        run = forward_fn(model, scope, images)
        with torch.no_grad(), counter.track(model), ms2d_scan_accounting(counter):
            proposals = run()

    by_op = dict(counter.by_module[''])
    flops = sum(by_op.values())
    params = sum(p.numel() for p in model.parameters())
    backbone = getattr(model, 'backbone', None)
    report = dict(
        model=spec, kind=kind, arch=arch, task=scope, input_shape=list(images.shape), counted_on=device,
        flops=flops, flops_real=flops - by_op.get(ROUTE_COPIES, 0), gflops=round(flops / 1e9, 6),
        params=params, params_backbone=sum(p.numel() for p in backbone.parameters()) if backbone else None,
        flops_by_op=dict(sorted(by_op.items(), key=lambda item: -item[1])),
        flops_by_module=_module_table(model, counter, depth),
        counted_aten_ops=dict(counter.calls),
        convention='fvcore (one multiply-add = one FLOP); selective scan 9*B*L*D*N + B*D*L per call; '
                   'x_proj/dt_proj on each of the 3 half-resolution route sequences, as the official code')
    if proposals is not None:
        report['num_proposals'] = proposals
    if kind == 'classifier' and arch is not None:
        version = MSVMamba.parse_arch(arch)['version']
        report['flops_by_official_op'] = {name: sum(by_op.get(g, 0) for g in groups)
                                          for name, groups in OFFICIAL_OP_GROUPS[version].items()}
    official = OFFICIAL_GFLOPS.get((kind, size), {}).get(arch)
    if official is not None:
        gflops, source = official
        report['official'] = dict(gflops=gflops, source=source,
                                  diff_pct=round(100 * (flops / 1e9 - gflops) / gflops, 3))
    return report


def _module_table(model: nn.Module, counter: FlopCounter, depth: int) -> list:
    rows = []
    for name, module in model.named_modules():
        level = name.count('.') + 1 if name else 0
        if level > depth:
            continue
        flops = sum(counter.by_module.get(name, {}).values())
        params = sum(p.numel() for p in module.parameters())
        if flops or params:
            rows.append(dict(module=name or '(model)', params=params, flops=flops))
    return rows


def format_report(report: dict) -> str:
    lines = [f"{report['model']} ({report['kind']}), input {tuple(report['input_shape'])}",
             f"  params                       {report['params']:>16,}  ({report['params'] / 1e6:.3f} M)"]
    if report['params_backbone'] is not None:
        lines.append(f"  params of the backbone       {report['params_backbone']:>16,}")
    lines.append(f"  FLOPs (official convention)  {report['flops']:>16,}  ({report['flops'] / 1e9:.3f} G)")
    lines.append(f"  FLOPs (what we compute)      {report['flops_real']:>16,}  ({report['flops_real'] / 1e9:.3f} G)")
    if 'official' in report:
        official = report['official']
        lines.append(f"  official                     {official['gflops']:>18.3f} G  ({official['source']}); "
                     f"ours {official['diff_pct']:+.2f}%")
    if 'num_proposals' in report:
        proposals = report['num_proposals']
        lines.append(f'  proposals through the RoI heads: {proposals} '
                     f'(the mask head takes the first {min(proposals, 100)})')
    lines.append('\n  operator group                      GFLOPs')
    for group, flops in report['flops_by_op'].items():
        lines.append(f'  {group:<30} {flops / 1e9:>11.4f}')
    lines.append('\n  module                                        params       GFLOPs')
    for row in report['flops_by_module']:
        name = row['module']
        indent = '  ' * (name.count('.') + (0 if name == '(model)' else 1))
        lines.append(f"  {indent + name:<40} {row['params']:>12,} {row['flops'] / 1e9:>12.4f}")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count FLOPs and parameters of MSVMamba models (official convention)')
    parser.add_argument('models', nargs='+', metavar='MODEL',
                        help=f'an arch ({", ".join(sorted(MSVMamba.arch_zoo))}) or a config file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='SIZE',
                        help='input H [W]; default 224 for an arch, per task for a config '
                             '(classification 224 224, detection 1280 800, segmentation 512 2048)')
    parser.add_argument('--depth', type=int, default=3, help='module depth of the per-module table (default 3)')
    if DictAction is not None:
        parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                            help='override config entries, e.g. model.test_cfg.rpn.max_per_img=300')
    parser.add_argument('--json', action='store_true',
                        help='print JSON (an object; a list of objects for several models) instead of tables')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        options = getattr(args, 'cfg_options', {})
        reports = [analyze(spec, args.shape, args.depth, cfg_options=options) for spec in args.models]
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f'get_flops.py: error: {error}')
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=1))
    else:
        print('\n\n'.join(format_report(report) for report in reports))


if __name__ == '__main__':
    main()
