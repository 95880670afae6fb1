"""Export MSVMamba models to ONNX: the model to export (arch, config, checkpoint) and the export itself.

:func:`build_model` returns an eval-mode ``nn.Module`` that maps a (B, 3, H, W) float image batch, normalised as
its config's data preprocessor does, to plain tensors:

* an arch name: the ImageNet classifier (backbone, global average pooling, linear head) -> ``logits`` (B, classes),
  or with ``backbone_only`` the four stage outputs ``feat0`` .. ``feat3``;
* an mmpretrain classifier config -> ``logits``;
* an mmseg EncoderDecoder config -> ``seg_logits`` (B, classes, H, W), upsampled to the input like mmseg's
  ``predict``, and ``seg_mask`` (B, H, W), their argmax;
* an mmdet MaskRCNN config -> one image's ``boxes``, ``scores``, ``labels``, ``masks``
  (:mod:`mmmsvmamba.deploy.detector`).

:func:`export_onnx` writes it with ``torch.onnx.export(dynamo=True)``, the compiled scan ops translated by
:mod:`mmmsvmamba.deploy.onnx_scan`; batch, height and width stay dynamic.
"""
import copy
import os
import time
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmsvmamba.models import ImageNetClassifier, MSVMamba
from .errors import DeployError

__all__ = ['DeployError', 'build_model', 'export_onnx', 'EXAMPLE_SHAPE', 'MIN_SIZE']

# The example batch the model is traced with. Batch 2, not 1 (torch.export specialises a dimension of size 1),
# and sizes that are not multiples of 32, so that no rounding of the stages is taken for the general rule.
EXAMPLE_SHAPE = (2, 3, 200, 232)
# The smallest height and width the exported graph is made for: the half-resolution map of the last stage must have
# at least 2 rows and columns (v3 from 65 pixels, v1 from 68); torch.export specialises sizes of 1.
MIN_SIZE = 68
IMAGENET_PREPROCESS = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)


class _Logits(nn.Module):
    """An mmpretrain classifier as images -> logits (its ``mode='tensor'`` output)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images, mode='tensor')


class _Segmentation(nn.Module):
    """An mmseg EncoderDecoder as images -> (logits at the input size, argmax mask), as its ``predict`` computes
    them for an unpadded image (``test_cfg.mode='whole'``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        logits = self.model.decode_head(self.model.extract_feat(images))
        logits = F.interpolate(logits, size=images.shape[2:], mode='bilinear',
                               align_corners=self.model.decode_head.align_corners)
        return logits, logits.argmax(1)


class _AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """nn.AdaptiveAvgPool2d whose export works for any input size (UPerHead's pyramid pooling, scales 2, 3, 6).

    torch's export of adaptive pooling unrolls the bins of the example's size, and the graph then fails at other
    sizes. Under torch.export this computes each bin [floor(i H / s), ceil((i + 1) H / s)) from an integral image
    (cumulative sums in float64, then four gathers), which follows the input size; eager mode runs the original op.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_exporting():
            return super().forward(x)
        out_h, out_w = _pair(self.output_size, x.shape[-2:])
        integral = F.pad(x.double().cumsum(-2).cumsum(-1), (1, 0, 1, 0))
        (top, bottom), (left, right) = _bins(x.shape[-2], out_h, x.device), _bins(x.shape[-1], out_w, x.device)
        rows = integral.index_select(-2, bottom) - integral.index_select(-2, top)
        sums = rows.index_select(-1, right) - rows.index_select(-1, left)
        area = (bottom - top)[:, None] * (right - left)[None, :]
        return (sums / area).to(x.dtype)


def _pair(size, input_size):
    size = (size, size) if isinstance(size, int) else tuple(size)
    return tuple(i if s is None else s for s, i in zip(size, input_size))


def _bins(length, bins: int, device):
    index = torch.arange(bins, device=device)
    return (index * length) // bins, ((index + 1) * length + bins - 1) // bins


def _exportable_pooling(model: nn.Module) -> None:
    for name, module in list(model.named_modules()):
        if type(module) is nn.AdaptiveAvgPool2d and module.output_size not in (1, (1, 1)):
            parent = model.get_submodule(name.rpartition('.')[0]) if '.' in name else model
            setattr(parent, name.rpartition('.')[2], _AdaptiveAvgPool2d(module.output_size))


class _Features(nn.Module):
    def __init__(self, backbone: MSVMamba):
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor):
        return self.backbone(images)


def _arch_model(arch, checkpoint: Optional[str], backbone_only: bool, num_classes: int) -> nn.Module:
    from mmmsvmamba.models.checkpoint import load_pretrained, load_weights
    try:
        MSVMamba.parse_arch(arch)
    except (ValueError, TypeError) as error:
        raise DeployError(str(error)) from None
    if backbone_only:
        backbone = MSVMamba(arch)
        if checkpoint:
            load_pretrained(backbone, checkpoint)
        model = _Features(backbone)
        model.output_names = [f'feat{i}' for i in backbone.out_indices]
        return model
    model = ImageNetClassifier(arch, num_classes)
    if checkpoint:
        load_weights(model, checkpoint)
    model.output_names = ['logits']
    return model


def _config_model(config: str, checkpoint: Optional[str], cfg_options: Optional[dict]) -> nn.Module:
    if not os.path.isfile(config):
        raise DeployError(f'config file not found: {config}')
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope, MODELS

    import mmmsvmamba.registry  # noqa: F401  (registers MSVMamba in the installed OpenMMLab libraries)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in ('mmpretrain', 'mmseg', 'mmdet'):
        raise DeployError(f'{config}: default_scope must be mmpretrain, mmseg or mmdet, got {scope!r}')
    if scope == 'mmdet' and cfg.model.get('type') != 'MaskRCNN':
        raise DeployError(f'{config}: of the mmdet detectors only MaskRCNN exports, got {cfg.model.get("type")!r}')
    backbone = cfg.model.get('backbone', {})
    if checkpoint and isinstance(backbone.get('init_cfg'), dict):
        backbone.pop('init_cfg')  # the checkpoint replaces the ImageNet weights the config would download
    with DefaultScope.overwrite_default_scope(scope):
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if checkpoint:
        from mmmsvmamba.models.checkpoint import load_weights
        load_weights(model, checkpoint)
    elif backbone.get('init_cfg'):
        model.init_weights()
    if scope == 'mmdet':
        from .detector import MaskRCNNDetections
        wrapped = MaskRCNNDetections(model)
    elif scope == 'mmseg':
        _exportable_pooling(model)
        wrapped = _Segmentation(model)
        wrapped.output_names = ['seg_logits', 'seg_mask']
    else:
        wrapped = _Logits(model)
        wrapped.output_names = ['logits']
    preprocessor = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    wrapped.preprocess = dict(mean=list(preprocessor.get('mean', [])), std=list(preprocessor.get('std', [])),
                              bgr_to_rgb=bool(preprocessor.get('bgr_to_rgb', preprocessor.get('to_rgb', False))))
    return wrapped


def build_model(arch=None, config: Optional[str] = None, checkpoint: Optional[str] = None,
                backbone_only: bool = False, num_classes: int = 1000, cfg_options: Optional[dict] = None) -> nn.Module:
    """The eval-mode model to export, from exactly one of ``arch`` (name or arch dict) and ``config``.

    The returned module has ``output_names`` and ``preprocess`` (mean, std, bgr_to_rgb of its inputs) attributes,
    which :func:`export_onnx` writes into the file. Raises :class:`DeployError` for requests it cannot serve.
    """
    if (arch is None) == (config is None):
        raise DeployError('give exactly one of an arch and a config')
    if checkpoint and not checkpoint.startswith(('http://', 'https://')) and not os.path.isfile(checkpoint):
        raise DeployError(f'checkpoint file not found: {checkpoint}')
    if config is not None:
        model = _config_model(config, checkpoint, cfg_options)
    else:
        model = _arch_model(arch, checkpoint, backbone_only, num_classes)
        model.preprocess = dict(IMAGENET_PREPROCESS)
    return model.eval()


def export_onnx(model: nn.Module, path: str, example_shape: Sequence[int] = EXAMPLE_SHAPE,
                dynamic: bool = True, opset: Optional[int] = None, external_data: bool = False) -> dict:
    """Write ``model`` (from :func:`build_model`, or any module whose MSVMamba backbones use the compiled ops)
    to ``path`` as ONNX; returns dict(path, export_s, nodes, opset, inputs, outputs, weights).

    ``external_data`` writes the weights to ``path + '.data'`` beside the graph (``weights`` names that file, else
    None): onnxruntime then maps them from the file instead of copying them out of the parsed graph, which halves
    the peak memory of creating a session (docs/deploy.md, "Peak memory"). The two files go together.

    The compiled scan op must be built (``python -m mmmsvmamba.ops.check``): the export keeps its two ops as
    single nodes and translates them (:mod:`mmmsvmamba.deploy.onnx_scan`); the PyTorch fallback would instead be
    unrolled into thousands of nodes that run several times slower.
    """
    import onnx

    from mmmsvmamba.ops import compiled, use_backend
    from . import onnx_scan
    if not compiled.has_kernel('cpu'):
        raise DeployError(compiled.not_built_message('cpu'))
    opset = opset or onnx_scan.OPSET
    # a copy in contiguous memory: ONNX has no memory layouts, and symbolic shapes over channels-last strides
    # make torch.export several times slower (docs/deploy.md, "Export time")
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    single = getattr(model, 'single_image', False)  # a detector takes one image: its batch is fixed at 1
    images = torch.randn(1 if single else example_shape[0], *example_shape[1:])
    dims = None
    if dynamic:
        dims = ({2: torch.export.Dim('height', min=MIN_SIZE), 3: torch.export.Dim('width', min=MIN_SIZE)}, )
        if not single:
            dims[0][0] = torch.export.Dim('batch')
    output_names = list(getattr(model, 'output_names', [])) or None
    start = time.perf_counter()
    with use_backend('compiled'):  # the torch backend would unroll each scan into thousands of nodes
        program = torch.onnx.export(model, (images, ), dynamo=True, input_names=['images'], output_names=output_names,
                                    dynamic_shapes=dims, opset_version=opset, optimize=False, verbose=False,
                                    custom_translation_table=onnx_scan.translation_table())
    _light_optimize(program.model)
    for key, value in _metadata(model).items():
        program.model.metadata_props[key] = value
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    program.save(path, external_data=external_data)
    export_s = time.perf_counter() - start
    proto = onnx.load(path)  # with the external data, if any: one read serves the check and the counts
    onnx.checker.check_model(proto)
    graph = proto.graph
    return dict(path=path, export_s=round(export_s, 1), nodes=len(graph.node), opset=opset,
                inputs=[i.name for i in graph.input], outputs=[o.name for o in graph.output],
                weights=path + '.data' if external_data else None)


def _metadata(model: nn.Module) -> dict:
    import json
    meta = {'mmmsvmamba.input': 'images: float32 (batch, 3, height, width), normalised as in mmmsvmamba.preprocess'}
    if getattr(model, 'preprocess', None):
        meta['mmmsvmamba.preprocess'] = json.dumps(model.preprocess)
    return meta


def _light_optimize(model) -> None:
    """Constant folding and clean-up passes of onnxscript's optimizer, without its pattern rewriter (which takes
    minutes on these graphs and finds nothing that onnxruntime's own graph optimisations do not).

    Folding has no size limit: what is computed from the weights alone (the 1x1 convolution weights reshaped from
    the Linear2d parameters, the depthwise weights plus their identity tap) is stored computed. onnxruntime would
    fold it at every session creation, holding both copies at once (MSVMamba-B: +155 MB of peak)."""
    import onnx_ir.passes.common as passes
    from onnxscript.optimizer import _constant_folding
    unlimited = 2**62
    for step in (_constant_folding.FoldConstantsPass(shape_inference=True, input_size_limit=unlimited,
                                                     output_size_limit=unlimited),
                 _merge_equal_shapes, passes.RemoveUnusedNodesPass(),
                 passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
                 passes.DeduplicateInitializersPass(), passes.CommonSubexpressionEliminationPass()):
        step(model)


def _merge_equal_shapes(model) -> None:
    """Let every ``Shape`` node of the main graph whose result torch.export knows (each dimension a number or a
    named symbol, such as ``((height//4))*((width//4))``) read the first node with the same result instead.

    The blocks of a stage then share one computation of the scans' positions, orders and reshapes (the
    common-subexpression pass that follows merges what reads equal inputs), which onnxruntime would otherwise
    repeat in every block at every run: MSVMamba-N 4,007 -> 3,287 nodes in the graph onnxruntime runs
    (docs/deploy.md, "Size arithmetic"). For this, the scans' translation reads sizes only from the ops' inputs
    and from the orders, whose shapes torch.export knows."""
    first = {}
    for node in list(model.graph):
        if node.op_type != 'Shape':
            continue
        dims = _known_dims(node)
        if dims is None:
            continue
        if dims in first:
            node.outputs[0].replace_all_uses_with(first[dims])
        else:
            first[dims] = node.outputs[0]


def _known_dims(shape_node) -> Optional[tuple]:
    """The dimensions a ``Shape`` node returns, as numbers and symbol names; None where one is unknown."""
    shape = shape_node.inputs[0].shape
    if shape is None:
        return None
    rank = len(shape)
    start, end = (shape_node.attributes[k].value if k in shape_node.attributes else default
                  for k, default in (('start', 0), ('end', rank)))
    dims = []
    for dim in list(shape)[slice(start, end)]:
        value = dim if isinstance(dim, int) else dim.value
        if value is None:
            return None
        dims.append(value)
    return tuple(dims)
