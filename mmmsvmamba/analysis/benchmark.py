"""Throughput and peak memory of MSVMamba models next to their peers, with the protocol of the official H100 figures.

Protocol (the official code's speeds on one H100, ``Official Speed`` in analysis/metafile.yml): ImageNet
classifiers at batch 128, 224x224, AMP fp16; ``infer`` is a no-grad forward, ``train`` is forward + cross-entropy +
backward + AdamW step (with a GradScaler under fp16). Each measurement runs ``warmup`` steps, then ``runs`` timed
runs of ``iters`` steps, each bracketed by device synchronisation (:func:`mmmsvmamba.timing.time_runs`); images/s
is the median over the runs. Peak memory is ``torch.cuda.max_memory_allocated`` over warm-up and runs. TF32 and
cudnn.benchmark are set from the protocol and reported, with the device, the versions and the selective-scan backend
(:func:`environment`).

CPU protocol (:func:`make_protocol` without CUDA) is smaller: fp32, batch 8 (1 for ``scaling``), 1 warm-up step,
3 runs of 1 step. Each measurement runs in a fresh process (``isolate``), and its peak memory is the process's peak
resident set minus the resident set before the model was built. CPU rows also report images per second of
process CPU time, which does not depend on what else the machine runs (with one thread it is the throughput of one
idle core). CPU figures compare models measured side by side, not with the GPU anchors.

Two runtimes (``Case.runtime``): ``'pytorch'`` and, for inference of our classifiers on CPU, ``'onnxruntime'``:
the classifier exported once to ONNX (:mod:`mmmsvmamba.deploy`, in the calling process, so that the export's
memory is not in the measurement's peak; its weights as external data, the layout with the lower peak), then timed
by the same protocol, its session given the protocol's threads. Rows say their ``runtime``.

Three measurements, each returning ``dict(results=[rows], ...)``: :func:`benchmark_classifiers` (ours and the
peers at one size, with throughput ratios to the peers and, with both runtimes, onnxruntime's to PyTorch's),
:func:`benchmark_scaling` (inference time against input size), :func:`benchmark_configs` (test_step / train_step of
mmdet or mmseg configs on synthetic data).
"""
import concurrent.futures
import contextlib
import importlib.metadata
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import __version__
from ..ops.backend import resolve_backend
from ..timing import time_runs
from .models import PEERS, TASK_SHAPES, build_named_model
from .published import official_speeds

MODES = ('infer', 'train')
RUNTIMES = ('pytorch', 'onnxruntime')
AMP = ('fp16', 'bf16', 'none')
# (CUDA, CPU) batch sizes; configs train with the config's own batch unless one is given
DEFAULT_BS = dict(classify=(128, 8), scaling=(16, 1), config=(1, 1))
DEFAULT_SIZES = ('224', '384', '512', '768', '1024', '1280x800')
PACKAGES = ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain', 'numpy')


@dataclass
class Protocol:
    device: str
    bs: int
    res: int
    amp: str  # 'fp16', 'bf16' or 'none'
    warmup: int
    runs: int
    iters: int
    threads: int
    tf32: Optional[bool]  # None keeps PyTorch's defaults
    cudnn_benchmark: bool
    isolate: bool  # CPU: one fresh process per measurement (needed for a per-measurement peak)
    seed: int = 0
    compile: bool = False  # torch.compile every model (after the warm-up's first steps compile it)

    @property
    def precision(self) -> str:
        """'fp32' or 'amp_fp16' / 'amp_bf16', as the result rows name it."""
        return f'amp_{self.amp}' if self.amp != 'none' else 'fp32'

    @property
    def mode_suffix(self) -> str:
        """What a result row's mode adds to the step: the precision, and '_compile' under torch.compile."""
        return self.precision + ('_compile' if self.compile else '')


def make_protocol(command: str, device: Optional[str] = None, bs: Optional[int] = None, res: Optional[int] = None,
                  amp: Optional[str] = None, warmup: Optional[int] = None, runs: Optional[int] = None,
                  iters: Optional[int] = None, threads: Optional[int] = None, tf32: Optional[bool] = None,
                  cudnn_benchmark: bool = True, isolate: bool = True, compile: bool = False) -> Protocol:
    """The protocol of ``command`` ('classify', 'scaling', 'config') on ``device``, with the GPU or CPU defaults
    for every value left None (see the module docstring). Raises ValueError for impossible values."""
    gpu = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu')).type == 'cuda'
    if gpu and not torch.cuda.is_available():
        raise ValueError('--device cuda: no CUDA device is available; use --device cpu')
    if amp is not None and amp not in AMP:
        raise ValueError(f'amp must be one of {AMP}, got {amp!r}')

    def given(value, default):
        return default if value is None else value

    protocol = Protocol(
        device='cuda' if gpu else str(torch.device(device or 'cpu')),
        bs=given(bs, DEFAULT_BS[command][0 if gpu else 1]),
        res=given(res, 224), amp=amp or ('fp16' if gpu else 'none'), warmup=given(warmup, 10 if gpu else 1),
        runs=given(runs, 5 if gpu else 3), iters=given(iters, 10 if gpu else 1),
        threads=given(threads, torch.get_num_threads()), tf32=tf32, cudnn_benchmark=cudnn_benchmark,
        isolate=not gpu and isolate, compile=compile)
    if min(protocol.bs, protocol.res, protocol.runs, protocol.iters, protocol.threads) <= 0 or protocol.warmup < 0:
        raise ValueError('--bs, --res, --runs, --iters and --threads must be positive, --warmup non-negative')
    if gpu and protocol.amp == 'none' and protocol.tf32 is None:
        warnings.warn('fp32 on CUDA with PyTorch\'s TF32 defaults: pass --tf32 on/off to fix the precision')
    return protocol


@dataclass
class Case:
    """One measurement: a model ('classifier': an arch or peer name; 'config': a config file) in one mode."""
    kind: str
    model: str
    mode: str
    protocol: Protocol
    shape: Tuple[int, int]
    peer_source: str = 'auto'
    label: Optional[str] = None
    runtime: str = 'pytorch'
    onnx_path: Optional[str] = None  # the exported classifier or detector, for runtime 'onnxruntime'
    builder: Optional[Callable[[], Tuple[nn.Module, str]]] = None  # (model, source) not known by name

    @property
    def name(self) -> str:
        return self.label or self.model


# ----------------------------------------------------------------------------------------------------------------
# Measurement

@contextlib.contextmanager
def backend_settings(protocol: Protocol):
    """Threads, TF32 and cudnn.benchmark as the protocol says, restored on exit (callers may be tests)."""
    saved = (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark)
    torch.manual_seed(protocol.seed)
    torch.set_num_threads(protocol.threads)
    if protocol.tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = protocol.tf32
        torch.backends.cudnn.allow_tf32 = protocol.tf32
    torch.backends.cudnn.benchmark = protocol.cudnn_benchmark
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1:3]
        torch.backends.cudnn.benchmark = saved[3]


def _autocast(protocol: Protocol, device: torch.device):
    if protocol.amp == 'none':
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.float16 if protocol.amp == 'fp16' else torch.bfloat16)


def rss_bytes() -> Optional[int]:
    """This process's resident set now, or None where /proc is missing."""
    try:
        with open('/proc/self/statm') as statm:
            return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        return None


def peak_rss_bytes() -> int:
    """This process's peak resident set so far.

    On Linux this is VmHWM of /proc/self/status, not ``getrusage``'s ru_maxrss: a spawned child's ru_maxrss
    starts at its parent's resident set at the fork, so an isolated measurement launched from a large parent (one
    that has exported models, say) would report the parent's size.
    """
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024  # kilobytes on Linux, bytes on macOS


def _classifier_step(model: nn.Module, mode: str, protocol: Protocol, device: torch.device, height: int,
                     width: int):
    images = torch.randn(protocol.bs, 3, height, width, device=device)
    if mode == 'infer':
        model.eval()

        def step():
            with torch.no_grad(), _autocast(protocol, device):
                model(images)
        return step
    model.train()
    labels = torch.randint(0, 1000, (protocol.bs, ), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    scaler = torch.amp.GradScaler(device.type, enabled=protocol.amp == 'fp16')

    def step():
        with _autocast(protocol, device):
            loss = F.cross_entropy(model(images), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    return step


def _config_step(cfg, mode: str, protocol: Protocol, device: torch.device, height: int, width: int):
    """(model, step): test_step / train_step of an mmdet or mmseg model on synthetic images of (height, width)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper

    from ..engine.config import build_model
    # one process, one device: SyncBN (the segmentation configs) becomes BN, as in mmseg's own benchmark tool
    model = revert_sync_batchnorm(build_model(cfg)).to(device)
    data = _synthetic_batch(cfg.default_scope, protocol.bs, height, width, with_targets=mode == 'train')
    if mode == 'infer':
        model.eval()

        def step():
            with torch.no_grad(), _autocast(protocol, device):
                model.test_step(data)
        return model, step
    model.train()
    wrapper_cfg = dict(cfg.optim_wrapper)
    if protocol.amp != 'none':
        if device.type != 'cuda':
            raise ValueError('AMP training of a config needs CUDA (mmengine AmpOptimWrapper); use --amp none on CPU')
        wrapper_cfg.update(type='AmpOptimWrapper', loss_scale='dynamic',
                           dtype='float16' if protocol.amp == 'fp16' else 'bfloat16')
    with _quiet_mmengine():  # the optimizer builder logs every parameter at INFO
        optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    return model, lambda: model.train_step(data, optim_wrapper)


@contextlib.contextmanager
def _quiet_mmengine():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        yield
    finally:
        logger.setLevel(level)


def _synthetic_batch(scope: str, batch: int, height: int, width: int, with_targets: bool) -> dict:
    """A data-loader batch of random uint8 images (and random targets for training), as the runner passes it."""
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        return demo_mm_inputs(batch_size=batch, image_shapes=[(3, height, width)] * batch,
                              num_items=[10] * batch, num_classes=80, with_mask=with_targets)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch):
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width))
        sample = SegDataSample(metainfo=meta)
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, height, width)))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8) for _ in range(batch)],
                data_samples=samples)


def measure(case: Case) -> dict:
    """Run one measurement in this process; returns its result row."""
    with backend_settings(case.protocol):
        return _measure(case, case.protocol)


def _measure(case: Case, protocol: Protocol) -> dict:
    device = torch.device(protocol.device)
    height, width = case.shape
    rss_before = rss_bytes()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    if case.kind == 'config' and case.runtime == 'pytorch':
        from ..engine.config import config_scope, load_config
        cfg = load_config(case.model)
        source = cfg.default_scope
        with config_scope(source):
            model, step = _config_step(cfg, case.mode, protocol, device, height, width)
            seconds, cpu_seconds = time_runs(step, protocol.runs, protocol.iters, protocol.warmup, device)
    elif case.runtime == 'onnxruntime':
        from ..deploy.onnxruntime import ort_infer_step
        model, source = None, 'onnxruntime'
        step = ort_infer_step(case.onnx_path, torch.randn(protocol.bs, 3, height, width), protocol.threads)
        seconds, cpu_seconds = time_runs(step, protocol.runs, protocol.iters, protocol.warmup, device)
    else:
        model, source = case.builder() if case.builder else build_named_model(case.model, case.peer_source)
        model.to(device)
        if protocol.compile:
            model = torch.compile(model)
        step = _classifier_step(model, case.mode, protocol, device, height, width)
        seconds, cpu_seconds = time_runs(step, protocol.runs, protocol.iters, protocol.warmup, device)

    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device)
    elif protocol.isolate and rss_before is not None:
        peak = peak_rss_bytes() - rss_before
    else:  # the process peak would include earlier measurements
        peak = None
    images = protocol.bs * protocol.iters
    img_s = [images / s for s in seconds]
    row = dict(
        model=case.name, mode=f'{case.mode}_{protocol.mode_suffix}', step=case.mode, precision=protocol.precision,
        runtime=case.runtime, bs=protocol.bs, res=height if height == width else f'{height}x{width}',
        params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 6) if model is not None else None,
        img_s=statistics.median(img_s), peak_MB=peak / 2**20 if peak is not None else None,
        ms_per_img=1e3 / statistics.median(img_s), runs_img_s=img_s, source=source)
    if device.type == 'cpu':
        # On a shared CPU the wall clock includes time spent waiting for a core; the process CPU time does not.
        # With one thread, images per CPU-second is the throughput of one idle core, whatever the load.
        img_cpu_s = [images / s for s in cpu_seconds]
        row.update(img_per_cpu_s=statistics.median(img_cpu_s), cpu_ms_per_img=1e3 / statistics.median(img_cpu_s),
                   runs_img_per_cpu_s=img_cpu_s,
                   cpu_utilisation=statistics.median(c / w for c, w in zip(cpu_seconds, seconds)))
    return row


def run_case(case: Case, progress: Optional[Callable[[dict], None]] = None) -> dict:
    """:func:`measure` in a fresh process when the protocol isolates measurements, else here."""
    if case.protocol.isolate:
        context = multiprocessing.get_context('spawn')
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            row = pool.submit(measure, case).result()
    else:
        row = measure(case)
    if progress is not None:
        progress(row)
    return row


# ----------------------------------------------------------------------------------------------------------------
# Environment

def environment(protocol: Protocol) -> dict:
    """Device, versions, threads, precision flags and the scan backend a model would use under ``protocol``."""
    device = torch.device(protocol.device)
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions['mmmsvmamba'] = __version__
    env = dict(
        device=device_name(device), device_type=device.type, threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(), python=platform.python_version(), torch=torch.__version__,
        cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        packages=versions, scan_backend=resolve_backend(None, device, warn=False),
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
        cudnn_benchmark=torch.backends.cudnn.benchmark)
    if hasattr(os, 'getloadavg'):
        env['load_avg_start'] = [round(x, 2) for x in os.getloadavg()]
    return env


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model with its logical CPU count."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            names = [line.split(':', 1)[1].strip() for line in cpuinfo if line.startswith('model name')]
        return f'{names[0]} ({len(names)} logical CPUs)' if names else platform.processor()
    except OSError:
        return platform.processor() or 'cpu'


# ----------------------------------------------------------------------------------------------------------------
# The three measurements

def _ratio(a, b):
    return a / b if a is not None and b else None


def benchmark_classifiers(models: Sequence[str], peers: Sequence[str], modes: Sequence[str], protocol: Protocol,
                          env: dict, peer_source: str = 'auto', progress=None,
                          runtimes: Sequence[str] = ('pytorch', )) -> dict:
    """Ours and the peers at ``protocol.res``: the rows, the ratios of each of ours to each peer
    (:func:`peer_ratios`), the comparison with the H100 anchors (:func:`add_h100_anchors`) and, when
    ``runtimes`` has both, onnxruntime's throughput relative to PyTorch's for each of ours (:func:`runtime_ratios`).

    The onnxruntime rows are inference on CPU of our classifiers (not the peers); each is exported once, before
    its measurements, and the export time is in its rows (``export_s``).
    """
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown or not runtimes:
        raise ValueError(f'runtimes must be some of {RUNTIMES}, got {list(runtimes)}')
    if 'onnxruntime' in runtimes and torch.device(protocol.device).type != 'cpu':
        raise ValueError('the onnxruntime runtime is measured on CPU; use --device cpu')
    if 'onnxruntime' in runtimes and 'infer' not in modes:
        raise ValueError('the onnxruntime runtime measures inference; add infer to the modes')
    shape = (protocol.res, protocol.res)
    results = []
    with tempfile.TemporaryDirectory(prefix='mmmsvmamba-onnx-') as folder:
        for name in list(models) + list(peers):
            for mode in modes:
                if 'pytorch' in runtimes:
                    results.append(run_case(Case('classifier', name, mode, protocol, shape, peer_source), progress))
            if 'onnxruntime' in runtimes and name in models and 'infer' in modes:
                path = os.path.join(folder, f'{name}.onnx')
                export_s = export_classifier(name, path)
                case = Case('classifier', name, 'infer', protocol, shape, runtime='onnxruntime', onnx_path=path)
                results.append(dict(run_case(case, progress), export_s=export_s))
    add_h100_anchors(results, env['device'])
    return dict(results=results, ratios=peer_ratios(results, models, peers),
                runtime_ratios=runtime_ratios(results, models))


def export_classifier(arch: str, path: str) -> float:
    """Export the ImageNet classifier of ``arch`` (random weights: timing only) to ``path``, its weights as external
    data (the layout with the lower peak memory, docs/deploy.md); the seconds it took."""
    from ..deploy import build_model, export_onnx
    return export_onnx(build_model(arch=arch), path, external_data=True)['export_s']


def runtime_ratios(results: Sequence[dict], models: Sequence[str]) -> List[dict]:
    """onnxruntime's images/s over PyTorch's for each of ``models`` measured with both (inference)."""
    ratios = []
    for ort_row in results:
        if ort_row['runtime'] != 'onnxruntime' or ort_row['model'] not in models:
            continue
        for row in results:
            if row['model'] == ort_row['model'] and row['runtime'] == 'pytorch' and row['mode'] == ort_row['mode']:
                ratio = dict(model=row['model'], mode=row['mode'], bs=row['bs'],
                             img_s_ratio=ort_row['img_s'] / row['img_s'])
                if 'img_per_cpu_s' in row:
                    ratio['img_per_cpu_s_ratio'] = ort_row['img_per_cpu_s'] / row['img_per_cpu_s']
                ratios.append(ratio)
    return ratios


def peer_ratios(results: Sequence[dict], models: Sequence[str], peers: Sequence[str]) -> List[dict]:
    """Throughput and peak-memory ratios of each of ``models`` to each of ``peers``, per mode (same mode only)."""
    ratios = []
    for row in results:
        if row['model'] not in models or row['runtime'] != 'pytorch':
            continue
        for peer in results:
            if peer['model'] in peers and peer['mode'] == row['mode'] and peer['runtime'] == 'pytorch':
                ratio = dict(model=row['model'], mode=row['mode'], peer=peer['model'],
                             img_s_ratio=row['img_s'] / peer['img_s'],
                             peak_MB_ratio=_ratio(row['peak_MB'], peer['peak_MB']))
                if 'img_per_cpu_s' in row:
                    ratio['img_per_cpu_s_ratio'] = row['img_per_cpu_s'] / peer['img_per_cpu_s']
                ratios.append(ratio)
    return ratios


def add_h100_anchors(results: Sequence[dict], device: str) -> None:
    """Give each row measured under the anchors' protocol (an H100, AMP fp16, batch 128, 224x224; the official
    speeds of ``metafile.yml``) an ``official_h100`` entry: the official figures and our ratios to them."""
    anchors = official_speeds()
    for row in results:
        anchor = anchors.get((row['model'], row['step']))
        if (anchor and 'H100' in device and row['precision'] == 'amp_' + anchor.precision.split()[-1]
                and row['bs'] == anchor.bs and (row['res'], row['res']) == anchor.input):
            row['official_h100'] = dict(img_s=anchor.img_s, peak_MB=anchor.peak_MB,
                                        img_s_ratio=row['img_s'] / anchor.img_s,
                                        peak_MB_ratio=_ratio(row['peak_MB'], anchor.peak_MB))


def parse_size(text: str) -> Tuple[int, int]:
    """'512' -> (512, 512), '1280x800' -> (1280, 800); a ValueError otherwise."""
    try:
        parts = [int(p) for p in str(text).lower().split('x')]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) <= 0:
        raise ValueError(f'a size is N or HxW with positive ints, got {text!r}')
    return parts[0], parts[-1]


def benchmark_scaling(models: Sequence[str], sizes: Sequence[Tuple[int, int]], protocol: Protocol,
                      peer_source: str = 'auto', progress=None) -> dict:
    """Inference time per image at each size; for each model the 1024 / 512 time ratio (about 4 if linear)."""
    results = [run_case(Case('classifier', name, 'infer', protocol, size, peer_source), progress)
               for name in models for size in sizes]
    summary = {}
    for name in dict.fromkeys(row['model'] for row in results):
        rows = {row['res']: row for row in results if row['model'] == name}
        entry = {}
        for key in ('ms_per_img', 'cpu_ms_per_img'):
            if key in rows[next(iter(rows))]:
                entry[key] = {str(res): row[key] for res, row in rows.items()}
                if 512 in rows and 1024 in rows:  # linear complexity: 4x the pixels, about 4x the time
                    entry[f'{key}_1024_over_512'] = rows[1024][key] / rows[512][key]
        summary[name] = entry
    return dict(results=results, scaling=summary)


def benchmark_configs(configs: Sequence[str], modes: Sequence[str], protocol: Protocol,
                      shapes: Optional[dict] = None, bs: Optional[int] = None, progress=None,
                      runtimes: Sequence[str] = ('pytorch', )) -> dict:
    """test_step / train_step of detection and segmentation configs on synthetic data.

    ``shapes`` maps a mode to (H, W) (default: the task's :data:`TASK_SHAPES`); the batch is ``bs``, else 1 for
    inference and the config's own for training. With 'onnxruntime' in ``runtimes``, a Mask R-CNN config is also
    exported (:func:`export_detector`) and its inference timed in onnxruntime (:func:`detector_onnx_rows`).
    """
    from ..engine.config import load_config
    results = []
    for path in configs:
        cfg = load_config(path)
        if cfg.default_scope not in ('mmdet', 'mmseg'):
            raise ValueError(f'{path}: `config` benchmarks detection and segmentation configs (default_scope mmdet or '
                             f'mmseg); for a classifier use `classify` with its arch')
        name = os.path.splitext(os.path.basename(path))[0]
        for mode in modes:
            shape = tuple((shapes or {}).get(mode) or TASK_SHAPES[cfg.default_scope][mode])
            case_bs = bs or (cfg.train_dataloader.batch_size if mode == 'train' else 1)
            case = Case('config', path, mode, replace(protocol, bs=case_bs), shape, label=name)
            if 'pytorch' in runtimes:
                results.append(run_case(case, progress))
            if 'onnxruntime' in runtimes and mode == 'infer':
                results += detector_onnx_rows(cfg, case, progress)
    return dict(results=results, runtime_ratios=runtime_ratios(results, [os.path.splitext(os.path.basename(p))[0]
                                                                         for p in configs]))


def detector_onnx_rows(cfg, case: Case, progress=None) -> List[dict]:
    """The onnxruntime row of a Mask R-CNN config's inference (``case``: its PyTorch infer case): the config
    exported once (random weights: timing only), then timed on one image of the case's shape."""
    if cfg.default_scope != 'mmdet' or torch.device(case.protocol.device).type != 'cpu' or case.protocol.bs != 1:
        raise ValueError('the onnxruntime runtime of `config` measures Mask R-CNN inference on CPU at batch 1')
    with tempfile.TemporaryDirectory(prefix='mmmsvmamba-onnx-') as folder:
        path = os.path.join(folder, 'detector.onnx')
        export_s = export_detector(case.model, path)
        row = run_case(replace(case, runtime='onnxruntime', onnx_path=path), progress)
    return [dict(row, export_s=export_s)]


def export_detector(config: str, path: str) -> float:
    """Export the Mask R-CNN of ``config`` (random weights, no ImageNet download) to ``path``; the seconds."""
    from ..deploy import build_model, export_onnx
    return export_onnx(build_model(config=config, cfg_options={'model.backbone.init_cfg': None}), path)['export_s']


def default_peers(command: str) -> List[str]:
    """The peers a command compares with: all for classify, Swin-T for scaling."""
    return list(PEERS) if command == 'classify' else ['swin-t']
