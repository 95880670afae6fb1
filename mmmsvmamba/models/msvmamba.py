"""MSVMamba backbone: Multi-Scale VMamba (Shi, Dong, Xu, NeurIPS 2024, arXiv 2405.14174).

Re-implemented from the architecture description in ``docs/architecture.md`` (checked against the official code,
github.com/YuHengsss/MSVMamba: branch master @ c394019 for the v1 Nano/Micro/Tiny models, branch v2 @ fca4a39 for
the v3 Tiny/Small/Base models). Parameter names are the official state-dict keys, so official checkpoints load
without renaming; ``outnorm{i}`` are the per-output norms of the official detection/segmentation wrapper.

Input (B, 3, H, W) -> tuple of (B, dims[i], H_i, W_i) for i in ``out_indices``, at strides 4, 8, 16, 32
(v3 rounds up at every halving; v1's stem rounds down, its patch merging up).
"""
import copy
from numbers import Real
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from .layers import (ConvFFN, DropPath, LayerNorm2d, PatchMerging2D, downsample_v3, stem_v1, stem_v3)
from .ms2d import MS2D

NUM_STAGES = 4
ARCH_KEYS = ('version', 'dims', 'depths', 'ssm_ratio', 'ffn_ratio', 'gate')
VERSIONS = ('v1', 'v3')


class VSSBlock(nn.Module):
    """One MSVMamba block: ``x + DropPath(MS2D(norm(x)))``, then the ConvFFN residual.

    The ConvFFN residual differs by family (docs/architecture.md, "Two families"): v3 is
    ``x + DropPath(norm2(ConvFFN(x)))`` on (B, C, H, W); v1 is ``x + DropPath(ConvFFN(norm2(x)))`` on (B, H, W, C).
    """

    def __init__(self, channels: int, version: str, ssm_ratio: float, ffn_ratio: float, gate: bool,
                 drop_path: float):
        super().__init__()
        norm = nn.LayerNorm if version == 'v1' else LayerNorm2d
        self.channels_last = version == 'v1'
        self.norm = norm(channels)
        self.op = MS2D(channels, version, ssm_ratio, gate)
        self.drop_path = DropPath(drop_path)
        self.convFFN = ConvFFN(channels, ffn_ratio)
        self.norm2 = norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.op(self.norm(x)))
        if self.channels_last:
            ffn = self.convFFN(self.norm2(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        else:
            ffn = self.norm2(self.convFFN(x))
        return x + self.drop_path(ffn)


class Stage(nn.Module):
    """The blocks of one resolution and the downsample to the next (Identity after the last stage)."""

    def __init__(self, blocks: nn.Sequential, downsample: nn.Module):
        super().__init__()
        self.blocks = blocks
        self.downsample = downsample


class MSVMamba(nn.Module):
    """MSVMamba backbone for mmdet, mmseg and mmpretrain (registered in each by ``import mmmsvmamba``).

    Args:
        arch (str | dict): a name of :attr:`arch_zoo` (``nano``, ``micro``, ``tiny_v1``, ``tiny``, ``small``,
            ``base`` or an alias ``n``, ``m``, ``t_v1``, ``t``, ``s``, ``b``), or a dict with exactly the keys

            - **version** (str): ``'v1'`` (channels-last family: Nano/Micro/Tiny-v1) or ``'v3'``.
            - **dims** (int | Sequence[int]): stage widths; an int d means [d, 2d, 4d, 8d].
            - **depths** (Sequence[int]): blocks per stage, 4 ints.
            - **ssm_ratio** (float): SSM inner width over block width.
            - **ffn_ratio** (float): ConvFFN hidden width over block width.
            - **gate** (bool): multiply the SSM output by SiLU(z).

            Defaults to ``'tiny'``.
        out_indices (Sequence[int]): stages whose (normalised) outputs are returned, from 0..3 (negative
            indices count from the end). Defaults to (0, 1, 2, 3).
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and stages 1..k (and their output
            norms); frozen parts stay in eval mode with ``requires_grad=False``. Defaults to -1.
        norm_eval (bool): keep all normalisation layers in eval mode while training. Defaults to False.
        with_cp (bool): activation checkpointing per block (same outputs and gradients, less memory).
            Defaults to False.
        drop_path_rate (float, optional): stochastic depth rate of the last block (linear from 0). None uses the
            arch's ImageNet value (``arch_zoo[...]['drop_path_rate']``). Defaults to None.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH_OR_URL)`` loads an official or
            mmmsvmamba checkpoint in :meth:`init_weights`; optional ``checkpoint_key`` picks the entry
            (``'model'``, ``'model_ema'``, ``'state_dict'``). Defaults to None (official random init).

    Example:
        >>> model = MSVMamba('tiny').eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 224, 224))]
        [(1, 96, 56, 56), (1, 192, 28, 28), (1, 384, 14, 14), (1, 768, 7, 7)]
    """

    # yapf: disable
    arch_zoo = {
        **dict.fromkeys(['n', 'nano'],      dict(version='v1', dims=48, depths=(1, 2, 5, 2), ssm_ratio=2.0, ffn_ratio=2.0, gate=True, drop_path_rate=0.2)),  # noqa: E501
        **dict.fromkeys(['m', 'micro'],     dict(version='v1', dims=64, depths=(1, 2, 5, 2), ssm_ratio=2.0, ffn_ratio=2.0, gate=True, drop_path_rate=0.2)),  # noqa: E501
        **dict.fromkeys(['t_v1', 'tiny_v1'], dict(version='v1', dims=96, depths=(1, 2, 9, 2), ssm_ratio=2.0, ffn_ratio=2.0, gate=True, drop_path_rate=0.2)),  # noqa: E501
        **dict.fromkeys(['t', 'tiny'],      dict(version='v3', dims=96, depths=(2, 2, 9, 2), ssm_ratio=1.0, ffn_ratio=4.0, gate=False, drop_path_rate=0.2)),  # noqa: E501
        **dict.fromkeys(['s', 'small'],     dict(version='v3', dims=96, depths=(2, 3, 20, 2), ssm_ratio=1.0, ffn_ratio=4.0, gate=False, drop_path_rate=0.4)),  # noqa: E501
        **dict.fromkeys(['b', 'base'],      dict(version='v3', dims=128, depths=(2, 4, 18, 2), ssm_ratio=1.0, ffn_ratio=4.0, gate=True, drop_path_rate=0.5)),  # noqa: E501
    }
    # yapf: enable

    def __init__(self, arch: Union[str, dict] = 'tiny', out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1, norm_eval: bool = False, with_cp: bool = False,
                 drop_path_rate: Optional[float] = None, init_cfg: Optional[dict] = None):
        super().__init__()
        arch = self.parse_arch(arch)
        self.arch = arch
        self.version, self.dims = arch['version'], arch['dims']
        self.out_indices = _parse_out_indices(out_indices)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= NUM_STAGES:
            raise ValueError(f'frozen_stages must be an int in [-1, {NUM_STAGES}], got {frozen_stages!r}')
        self.frozen_stages, self.norm_eval, self.with_cp = frozen_stages, norm_eval, with_cp
        self.init_cfg = _check_init_cfg(init_cfg)
        if drop_path_rate is None:
            drop_path_rate = arch['drop_path_rate']
        if not isinstance(drop_path_rate, Real) or not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be a number in [0, 1), got {drop_path_rate!r}')

        channels_last = self.version == 'v1'
        self.patch_embed = (stem_v1 if channels_last else stem_v3)(self.dims[0])
        rates = torch.linspace(0, drop_path_rate, sum(arch['depths'])).tolist()
        self.layers = nn.ModuleList()
        for i, (width, depth) in enumerate(zip(self.dims, arch['depths'])):
            blocks = nn.Sequential(*[
                VSSBlock(width, self.version, arch['ssm_ratio'], arch['ffn_ratio'], arch['gate'], rates.pop(0))
                for _ in range(depth)
            ])
            if i == NUM_STAGES - 1:
                downsample = nn.Identity()
            else:
                downsample = PatchMerging2D(width) if channels_last else downsample_v3(width)
            self.layers.append(Stage(blocks, downsample))
        for i in self.out_indices:
            self.add_module(f'outnorm{i}', (nn.LayerNorm if channels_last else LayerNorm2d)(self.dims[i]))

        self.apply(_init_official)
        for module in self.modules():
            if isinstance(module, MS2D):
                module.reset_ssm_parameters()
        # Convolution weights live in channels-last memory, the layout of the activations (see layers.pointwise):
        # with weights in the other layout, oneDNN reorders them on every call. load_state_dict and .to() keep it.
        self.to(memory_format=torch.channels_last)
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        """Validate ``arch`` (a name or a dict) into a full arch dict with dims as 4 ints."""
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_zoo:
                raise ValueError(f'unknown MSVMamba arch {arch!r}; choose one of {sorted(cls.arch_zoo)} '
                                 f'or give a dict with the keys {ARCH_KEYS}')
            return copy.deepcopy({**cls.arch_zoo[key], 'dims': _expand_dims(cls.arch_zoo[key]['dims'])})
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
        missing = [k for k in ARCH_KEYS if k not in arch]
        unknown = [k for k in arch if k not in ARCH_KEYS + ('drop_path_rate',)]
        if missing or unknown:
            raise ValueError(f'arch dict must have exactly the keys {ARCH_KEYS} (optionally drop_path_rate); '
                             f'missing {missing}, unknown {unknown}')
        if arch['version'] not in VERSIONS:
            raise ValueError(f"arch['version'] must be one of {VERSIONS}, got {arch['version']!r}")
        depths = arch['depths']
        if (not isinstance(depths, Sequence) or len(depths) != NUM_STAGES
                or not all(isinstance(d, int) and d > 0 for d in depths)):
            raise ValueError(f"arch['depths'] must be {NUM_STAGES} positive ints, got {depths!r}")
        for key in ('ssm_ratio', 'ffn_ratio'):
            if not isinstance(arch[key], Real) or arch[key] <= 0:
                raise ValueError(f'arch[{key!r}] must be a positive number, got {arch[key]!r}')
        if not isinstance(arch['gate'], bool):
            raise ValueError(f"arch['gate'] must be a bool, got {arch['gate']!r}")
        dims = _expand_dims(arch['dims'])
        if arch['version'] == 'v3' and dims[0] % 2:
            raise ValueError(f"arch['dims'][0] must be even for v3 (its stem has dims[0] / 2 channels), got {dims[0]}")
        if min(int(arch['ssm_ratio'] * d) for d in dims) < 8:
            raise ValueError("arch['ssm_ratio'] * dims must be at least 8 (squeeze-excite reduces by 8)")
        return dict(arch, dims=dims, depths=tuple(depths), drop_path_rate=arch.get('drop_path_rate', 0.0))

    def init_weights(self):
        """Load the checkpoint named by ``init_cfg``; without one, keep the official random init."""
        if self.init_cfg is None:
            return
        from .checkpoint import load_pretrained
        load_pretrained(self, self.init_cfg['checkpoint'], checkpoint_key=self.init_cfg.get('checkpoint_key'))

    def forward(self, x: torch.Tensor) -> tuple:
        """(B, 3, H, W) -> tuple of (B, dims[i], H_i, W_i) for i in out_indices (module docstring)."""
        self._check_input(x)
        x = self.patch_embed(x)
        outs = []
        for i, layer in enumerate(self.layers[:max(self.out_indices) + 1]):
            for block in layer.blocks:
                use_cp = self.with_cp and self.training and torch.is_grad_enabled()
                x = cp.checkpoint(block, x, use_reentrant=False) if use_cp else block(x)
            if i in self.out_indices:
                out = getattr(self, f'outnorm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous() if self.version == 'v1' else out.contiguous())
            x = layer.downsample(x)
        return tuple(outs)

    def _check_input(self, x: torch.Tensor):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            desc = f'{x.dtype} tensor of shape {tuple(x.shape)}' if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f'MSVMamba expects a 4-D float tensor (B, 3, H, W), got a {desc}')
        if x.shape[1] != 3:
            raise ValueError(f'MSVMamba expects 3 input channels (B, 3, H, W), got {x.shape[1]} channels in '
                             f'{tuple(x.shape)}; for channels-last images, permute to (B, C, H, W) first')

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.patch_embed
        for i in range(self.frozen_stages):
            yield self.layers[i]
            if i in self.out_indices:
                yield getattr(self, f'outnorm{i}')

    def _freeze_stages(self):
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)):
                    module.eval()
        return self


def _expand_dims(dims) -> tuple:
    if isinstance(dims, int) and not isinstance(dims, bool):
        dims = [dims * 2**i for i in range(NUM_STAGES)]
    if (not isinstance(dims, Sequence) or len(dims) != NUM_STAGES
            or not all(isinstance(d, int) and d > 0 for d in dims)):
        raise ValueError(f"arch['dims'] must be a positive int or {NUM_STAGES} positive ints, got {dims!r}")
    return tuple(dims)


def _parse_out_indices(out_indices) -> tuple:
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    if not isinstance(out_indices, Sequence) or not out_indices:
        raise ValueError(f'out_indices must be a non-empty sequence of stage indices, got {out_indices!r}')
    parsed = []
    for index in out_indices:
        if not isinstance(index, int) or not -NUM_STAGES <= index < NUM_STAGES:
            raise ValueError(f'out_indices values must be ints in [0, {NUM_STAGES - 1}] (or negative from the end), '
                             f'got {index!r} in {tuple(out_indices)}')
        parsed.append(index % NUM_STAGES)
    if len(set(parsed)) != len(parsed):
        raise ValueError(f'out_indices has repeated stages: {tuple(out_indices)}')
    return tuple(sorted(parsed))


def _check_init_cfg(init_cfg):
    if init_cfg is None:
        return None
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained' or not init_cfg.get('checkpoint'):
        raise ValueError("MSVMamba init_cfg must be dict(type='Pretrained', checkpoint=PATH_OR_URL) "
                         f'(optionally checkpoint_key=...), got {init_cfg!r}')
    unknown = set(init_cfg) - {'type', 'checkpoint', 'checkpoint_key'}
    if unknown:
        raise ValueError(f'unknown init_cfg keys {sorted(unknown)}; allowed: type, checkpoint, checkpoint_key')
    return dict(init_cfg)


def _init_official(module: nn.Module):
    """The official VSSM._init_weights: truncated-normal Linear weights (std 0.02, absolute bounds +-2), unit norms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
