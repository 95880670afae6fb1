"""The official MSVMamba code as a benchmark peer, from a clone the user provides (never vendored here).

From a clone of github.com/YuHengsss/MSVMamba, :func:`prepare` writes a scratch copy: the v3 model files of
branch ``v2`` (:data:`MODELS_COMMIT`) and the selective-scan kernel sources of ``master`` (:data:`KERNEL_COMMIT`,
mode ``oflex``), with the kernel's ``reverse_scan.cuh`` patched for CUDA 13's CUB (``cub::LaneId()`` and
``cub::CTA_SYNC()`` are gone: the PTX ``%laneid`` register and ``__syncthreads()`` do the same).
:func:`build_kernel` compiles ``selective_scan_cuda_oflex`` for one compute capability into the scratch copy;
:func:`import_official` imports the official ``vmamba`` module with stubs for what it imports but never uses
here (``fvcore``, FLOP counting only; ``linear_attn``, missing from the branch) and the scan module given;
:func:`build_v3_tiny` builds the released v3 Tiny classifier, (B, 3, 224, 224) images -> (B, 1000) logits,
checked against its 32,263,720 parameters.

Timing goes through :class:`KernelGuard`: it refuses to time a model unless the official code's scan is the
compiled extension of the scratch copy and the model's forward called it.
"""
import importlib.util
import subprocess
import sys
import tarfile
import io
import types
from pathlib import Path

import torch

MODELS_COMMIT = 'fca4a39'
KERNEL_COMMIT = 'c394019'
MODEL_PATHS = ('classification/models', 'classification/configs/msv2/msvmambav3_tiny_224.yaml')
KERNEL_PATH = 'kernels/selective_scan'
KERNEL_MODULE = 'selective_scan_cuda_oflex'
KERNEL_SOURCES = ('csrc/selective_scan/cusoflex/selective_scan_oflex.cpp',
                  'csrc/selective_scan/cusoflex/selective_scan_core_fwd.cu',
                  'csrc/selective_scan/cusoflex/selective_scan_core_bwd.cu')
# the official setup.py's nvcc flags, less its fixed -gencode list (we build for the device's capability only) and
# its -std=c++17 (torch's own flags pick the standard its headers need: C++20 from torch 2.13)
NVCC_FLAGS = ('-O3', '-U__CUDA_NO_HALF_OPERATORS__', '-U__CUDA_NO_HALF_CONVERSIONS__',
              '-U__CUDA_NO_BFLOAT16_OPERATORS__', '-U__CUDA_NO_BFLOAT16_CONVERSIONS__',
              '-U__CUDA_NO_BFLOAT162_OPERATORS__', '-U__CUDA_NO_BFLOAT162_CONVERSIONS__', '--expt-relaxed-constexpr',
              '--expt-extended-lambda', '--use_fast_math', '-lineinfo')
# VSSM(...) keywords of the released v3 Tiny: classification/configs/msv2/msvmambav3_tiny_224.yaml over the
# defaults of the branch's config.py (the same keywords the equivalence fixture records, at full size)
V3_TINY = dict(
    patch_size=4, in_chans=3, num_classes=1000, depths=[2, 2, 9, 2], dims=96, ssm_d_state=1, ssm_ratio=1.0,
    ssm_rank_ratio=2.0, ssm_dt_rank='auto', ssm_act_layer='silu', ssm_conv=3, ssm_conv_bias=True, ssm_drop_rate=0.0,
    ssm_init='v0', forward_type='vms_noz', mlp_ratio=4.0, mlp_act_layer='gelu', mlp_drop_rate=0.0, gmlp=False,
    drop_path_rate=0.2, patch_norm=True, norm_layer='ln2d', downsample_version='v3', patchembed_version='v2',
    use_checkpoint=False, posembed=False, imgsize=224, pre_norm=False, axis_stage=[], num_heads=[1, 2, 4, 8],
    full_res_index=1, convffn=True, add_se=True, conv_ffn_ratio=4)
V3_TINY_PARAMS = 32_263_720
LANE_ID = ('__device__ __forceinline__ unsigned mmmsvmamba_lane_id() '
           '{ unsigned lane; asm volatile("mov.u32 %0, %%laneid;" : "=r"(lane)); return lane; }\n')


def _git(clone: Path, *args) -> bytes:
    return subprocess.run(['git', '-C', str(clone), *args], check=True, capture_output=True).stdout


def check_clone(clone) -> Path:
    """The clone's path, after checking it holds both commits; ValueError naming what is missing otherwise."""
    clone = Path(clone)
    if not clone.exists():
        raise ValueError(f'--official {clone}: no such folder (give a clone of github.com/YuHengsss/MSVMamba)')
    for commit in (MODELS_COMMIT, KERNEL_COMMIT):
        try:
            _git(clone, 'cat-file', '-e', f'{commit}^{{commit}}')
        except (subprocess.CalledProcessError, FileNotFoundError):
            raise ValueError(f'--official {clone}: not a git clone of YuHengsss/MSVMamba holding commit {commit} '
                             '(clone with all branches: git clone https://github.com/YuHengsss/MSVMamba)') from None
    return clone


def patch_reverse_scan(text: str) -> str:
    """``reverse_scan.cuh`` without the CUB calls CUDA 13 removed; ValueError if the source is not the expected one."""
    if 'cub::LaneId()' not in text or 'cub::CTA_SYNC()' not in text:
        raise ValueError('reverse_scan.cuh: expected cub::LaneId() and cub::CTA_SYNC() (unknown kernel source)')
    text = text.replace('cub::LaneId()', 'mmmsvmamba_lane_id()').replace('cub::CTA_SYNC()', '__syncthreads()')
    first_use = text.index('mmmsvmamba_lane_id()')
    namespace = text.rfind('\n', 0, text.rfind('template', 0, first_use))  # before the template that uses it
    return text[:namespace + 1] + LANE_ID + text[namespace + 1:]


def _extract(clone: Path, commit: str, paths, into: Path):
    archive = _git(clone, 'archive', '--format=tar', commit, *paths)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter='data')


def prepare(clone, scratch) -> Path:
    """Write the scratch copy (model files, patched kernel sources) into ``scratch``; returns ``scratch``."""
    clone, scratch = check_clone(clone), Path(scratch)
    _extract(clone, MODELS_COMMIT, MODEL_PATHS, scratch)
    _extract(clone, KERNEL_COMMIT, (KERNEL_PATH, ), scratch)
    header = scratch / KERNEL_PATH / 'csrc/selective_scan/reverse_scan.cuh'
    header.write_text(patch_reverse_scan(header.read_text()))
    return scratch


def kernel_folder(scratch) -> Path:
    return Path(scratch) / 'build'


def build_kernel(scratch, capability, verbose: bool = True):
    """Compile the oflex kernel for ``capability`` (major, minor) into the scratch copy; returns the module."""
    from torch.utils.cpp_extension import load
    kernels = Path(scratch) / KERNEL_PATH
    arch = '{}{}'.format(*capability)
    folder = kernel_folder(scratch)
    folder.mkdir(exist_ok=True)
    includes = [str(kernels / 'csrc/selective_scan')]
    # torch's CUDA headers include cuBLAS headers, which pip's CUDA runtime keeps here (as in setup.py)
    nvidia = Path(torch.__file__).parents[1] / 'nvidia' / 'cu13' / 'include'
    includes += [str(nvidia)] if nvidia.is_dir() else []
    return load(KERNEL_MODULE, [str(kernels / s) for s in KERNEL_SOURCES], extra_cflags=['-O3'],
                extra_cuda_cflags=[*NVCC_FLAGS, f'-gencode=arch=compute_{arch},code=sm_{arch}'],
                extra_include_paths=includes, build_directory=str(folder), verbose=verbose)


def load_kernel(scratch):
    """The kernel module :func:`build_kernel` compiled into ``scratch``; ValueError if it was not built."""
    built = sorted(kernel_folder(scratch).glob(f'{KERNEL_MODULE}*.so'))
    if not built:
        raise ValueError(f'{kernel_folder(scratch)}: the official kernel is not built (run its build step first)')
    spec = importlib.util.spec_from_file_location(KERNEL_MODULE, built[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stub(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def import_official(scratch, kernel) -> types.ModuleType:
    """The official ``vmamba`` module of the scratch copy, its scan module being ``kernel``."""
    def unused(*args, **kwargs):
        raise NotImplementedError('stubbed by the benchmark harness (FLOP counting / linear attention unused)')
    fvcore_nn = _stub('fvcore.nn', FlopCountAnalysis=unused, flop_count_str=unused, flop_count=unused,
                      parameter_count=unused)
    stubs = {'fvcore': _stub('fvcore', nn=fvcore_nn), 'fvcore.nn': fvcore_nn, KERNEL_MODULE: kernel,
             'linear_attn': _stub('linear_attn', GatedLinearAttention=unused, ConvLayer=unused, Stem=unused,
                                  PatchMerging=unused)}
    for name, module in stubs.items():
        sys.modules.setdefault(name, module)
    if sys.modules[KERNEL_MODULE] is not kernel:
        raise RuntimeError(f'another {KERNEL_MODULE} is already imported in this process')
    sys.path.insert(0, str(Path(scratch) / 'classification/models'))
    try:
        import vmamba  # the official module (imports its csms6s, csm_triton beside it)
    except ModuleNotFoundError as err:
        raise ValueError(f'the official code imports {err.name}, which is not installed here '
                         f'(pip install {err.name})') from err
    return vmamba


def build_v3_tiny(vmamba) -> torch.nn.Module:
    model = vmamba.VSSM(**V3_TINY)
    count = sum(p.numel() for p in model.parameters())
    if count != V3_TINY_PARAMS:
        raise RuntimeError(f'official v3 Tiny built with {count:,} parameters, expected {V3_TINY_PARAMS:,}')
    return model


class CountingKernel:
    """The official scan module with its ``fwd`` / ``bwd`` calls counted."""

    def __init__(self, kernel):
        self.kernel, self.calls = kernel, dict(fwd=0, bwd=0)

    def fwd(self, *args):
        self.calls['fwd'] += 1
        return self.kernel.fwd(*args)

    def bwd(self, *args):
        self.calls['bwd'] += 1
        return self.kernel.bwd(*args)


class KernelGuard:
    """Installs a :class:`CountingKernel` as the official code's scan and refuses timings that did not use the
    compiled extension of ``scratch``."""

    def __init__(self, vmamba, scratch):
        self.csms6s = sys.modules['csms6s']
        kernel = getattr(self.csms6s, KERNEL_MODULE)
        path = Path(getattr(kernel, '__file__', '') or '')
        if path.suffix != '.so' or kernel_folder(scratch).resolve() not in path.resolve().parents:
            raise RuntimeError(f'refusing to time the official model: its scan is {kernel!r}, not the compiled '
                               f'{KERNEL_MODULE} of {kernel_folder(scratch)}')
        self.counter = CountingKernel(kernel)
        self.csms6s.__dict__[KERNEL_MODULE] = self.counter

    def check(self, mode: str):
        """After a timed run: RuntimeError unless the kernel ran forward (and backward when training)."""
        calls = self.counter.calls
        if calls['fwd'] == 0 or (mode == 'train' and calls['bwd'] == 0):
            raise RuntimeError(f'refusing the official {mode} timing: the compiled kernel was not called ({calls})')


def torch_scan_kernel() -> types.ModuleType:
    """A stand-in for the official scan module on CPU (smoke tests only: never timed): our PyTorch scan."""
    from ..ops import selective_scan_fn

    def fwd(u, delta, A, B, C, D, delta_bias, delta_softplus, nrows, oflex):
        out = selective_scan_fn(u, delta, A, B, C, D, delta_bias, delta_softplus, backend='torch')
        return out, None
    return _stub('torch_scan_stand_in', fwd=fwd)


def smoke(clone, scratch, size: int = 64) -> dict:
    """CPU: prepare the scratch copy, import the official code with :func:`torch_scan_kernel`, build v3 Tiny
    (parameter count checked), run one forward of (1, 3, size, size) and check the guard refuses to time it."""
    prepare(clone, scratch)
    vmamba = import_official(scratch, torch_scan_kernel())
    model = build_v3_tiny(vmamba).eval()
    counter = CountingKernel(sys.modules['csms6s'].__dict__[KERNEL_MODULE])
    sys.modules['csms6s'].__dict__[KERNEL_MODULE] = counter
    with torch.no_grad():
        logits = model(torch.randn(1, 3, size, size))
    try:
        KernelGuard(vmamba, scratch)
        refused = False
    except RuntimeError:
        refused = True
    return dict(params=sum(p.numel() for p in model.parameters()), logits_shape=list(logits.shape),
                finite=bool(torch.isfinite(logits).all()), scan_calls=counter.calls['fwd'], guard_refused=refused)


def official_classifier(scratch, device: str = 'cuda') -> tuple:
    """(v3 Tiny on ``device``, its :class:`KernelGuard`): the compiled kernel of ``scratch``, ready to time."""
    vmamba = import_official(scratch, load_kernel(scratch))
    guard = KernelGuard(vmamba, scratch)
    return build_v3_tiny(vmamba).to(device), guard


OFFICIAL_NAME = 'official v3 Tiny'


def measure(scratch, modes, protocol, progress=None) -> list:
    """Result rows of the official v3 Tiny classifier under ``protocol`` (CUDA only), one per mode, each refused
    unless the compiled kernel of ``scratch`` ran (:class:`KernelGuard`)."""
    from .benchmark import Case, run_case
    if protocol.device != 'cuda':
        raise ValueError('the official code is measured with its CUDA kernel: use --device cuda')
    model, guard = official_classifier(scratch)
    rows = []
    for mode in modes:
        guard.counter.calls.update(fwd=0, bwd=0)
        case = Case('classifier', OFFICIAL_NAME, mode, protocol, (protocol.res, protocol.res),
                    builder=lambda: (model, 'official'))
        rows.append(run_case(case, progress))
        guard.check(mode)
    return rows
