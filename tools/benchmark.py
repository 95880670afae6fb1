"""Throughput and peak memory of MSVMamba models next to their peers, with the protocol of the official H100 figures.

    python tools/benchmark.py classify [ARCH ...] [--peers convnext-t swin-t resnet50] [protocol options]
    python tools/benchmark.py scaling  [ARCH ...] [--peers swin-t] [--sizes 224 512 1024 1280x800 ...]
    python tools/benchmark.py config   CONFIG [CONFIG ...] [--infer-shape H W] [--train-shape H W]
    python tools/benchmark.py plot     RESULT.json [RESULT.json ...] [--out-dir docs] [--tag cpu]

Protocol (shared/anchors: the official code on one H100): ImageNet classifiers at batch 128, 224x224, AMP fp16;
``infer`` is a no-grad forward, ``train`` is forward + cross-entropy + backward + AdamW step (with a GradScaler
under fp16). Each measurement runs ``--warmup`` steps, then ``--runs`` timed runs of ``--iters`` steps, each
bracketed by device synchronisation; images/s is the median over the runs. Peak memory is
``torch.cuda.max_memory_allocated`` over warm-up and runs. TF32 and cudnn.benchmark are set from the options and
reported, with the device, the versions and the selective-scan backend.

CPU mode (the default without CUDA) is smaller: fp32, batch 8 (1 for ``scaling``), 1 warm-up step, 3 runs of 1 step.
Each measurement runs in a fresh process, and its peak memory is the process's peak resident set minus the resident
set before the model was built. CPU rows also report images per second of process CPU time, which does not depend on
what else the machine runs (with ``--threads 1`` it is the throughput of one idle core). CPU figures compare models
measured side by side, not with the GPU anchors.

``classify`` and ``scaling`` need only torch and mmmsvmamba: without mmpretrain our classifier is built in plain
PyTorch (same parameters), and the peers come from torchvision when it is installed (``--peer-source``).
``config`` needs mmengine and mmdet or mmseg; ``plot`` needs matplotlib. See docs/benchmarks.md.
"""
import argparse
import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

import mmmsvmamba
from get_flops import build_classifier, build_from_config, canonical_arch, config_scope, load_config

# The official code on one H100, batch 128, 224x224, AMP fp16 (shared/anchors/official_msvmamba_h100.json). Only the
# tiny rows are the released configuration; the file's "small"/"base" rows are other networks and are left out.
H100_ANCHORS = {
    ('tiny', 'infer'): dict(img_s=2276.05, peak_MB=1962.5),
    ('tiny', 'train'): dict(img_s=777.30, peak_MB=13742.0),
}
# ImageNet-1k top-1 (%) for the accuracy-vs-throughput plot: MSVMamba from the NeurIPS 2024 paper (Table 1; tiny_v1
# from the official README), Swin-T and ConvNeXt-T from the paper's Table 10, ResNet-50 from mmpretrain's model zoo.
TOP1 = {'nano': 77.3, 'micro': 79.8, 'tiny_v1': 82.8, 'tiny': 83.0, 'small': 84.1, 'base': 84.4,
        'swin-t': 81.3, 'convnext-t': 82.1, 'resnet50': 76.55}
# Peers as their mmpretrain ImageNet configs build them (configs/_base_/models/{convnext/convnext-tiny,
# swin_transformer/tiny_224,resnet50}.py), and the torchvision model of the same architecture.
PEERS = {
    'convnext-t': dict(
        mmpretrain=dict(type='ImageClassifier', backbone=dict(type='ConvNeXt', arch='tiny', drop_path_rate=0.1),
                        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768)),
        torchvision='convnext_tiny'),
    'swin-t': dict(
        mmpretrain=dict(type='ImageClassifier',
                        backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
                        neck=dict(type='GlobalAveragePooling'),
                        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768)),
        torchvision='swin_t'),
    'resnet50': dict(
        mmpretrain=dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=50, out_indices=(3, )),
                        neck=dict(type='GlobalAveragePooling'),
                        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)),
        torchvision='resnet50'),
}
DEFAULT_SIZES = ('224', '384', '512', '768', '1024', '1280x800')
# (CUDA, CPU) batch sizes; `config` trains with the config's own batch unless --bs is given
DEFAULT_BS = dict(classify=(128, 8), scaling=(16, 1), config=(1, 1))
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


# ----------------------------------------------------------------------------------------------------------------
# Models

def build_model(name: str, peer_source: str = 'auto'):
    """(model, source) for an MSVMamba arch or a peer name; the model maps (B, 3, H, W) images to logits."""
    if name in PEERS:
        source = _peer_source(peer_source)
        if source == 'mmpretrain':
            from mmpretrain.registry import MODELS
            # _scope_: whatever default scope an earlier config set
            return MODELS.build(dict(PEERS[name]['mmpretrain'], _scope_='mmpretrain')), source
        import torchvision
        return getattr(torchvision.models, PEERS[name]['torchvision'])(), source
    model = build_classifier(canonical_name(name))
    return model, 'mmpretrain' if type(model).__name__ == 'ImageClassifier' else 'torch'


def _peers(args) -> list:
    """The peers asked for; by default the command's peers if a library provides them, else none (with a note)."""
    if args.peers is not None:
        return [canonical_name(p) for p in args.peers]
    if importlib.util.find_spec('mmpretrain') is None and importlib.util.find_spec('torchvision') is None:
        print('benchmark.py: neither mmpretrain nor torchvision is installed: no peers are measured',
              file=sys.stderr)
        return []
    return list(PEERS) if args.command == 'classify' else ['swin-t']


def _peer_source(choice: str) -> str:
    available = {lib: importlib.util.find_spec(lib) is not None for lib in ('mmpretrain', 'torchvision')}
    if choice == 'auto':
        for lib in ('mmpretrain', 'torchvision'):
            if available[lib]:
                return lib
        raise RuntimeError('peers need mmpretrain or torchvision; install one, or pass --peers with no names')
    if not available[choice]:
        raise RuntimeError(f'--peer-source {choice}: {choice} is not installed')
    return choice


def canonical_name(name: str) -> str:
    """A peer name, or the long name of an MSVMamba arch; a ValueError listing both otherwise."""
    if name in PEERS:
        return name
    try:
        return canonical_arch(name)
    except ValueError:
        archs = ', '.join(sorted(mmmsvmamba.MSVMamba.arch_zoo))
        raise ValueError(f'unknown model {name!r}: use an MSVMamba arch ({archs}) or a peer ({", ".join(PEERS)})') \
            from None


# ----------------------------------------------------------------------------------------------------------------
# Measurement

@contextlib.contextmanager
def backend_settings(protocol: Protocol):
    """Threads, TF32 and cudnn.benchmark as the protocol says, restored on exit (main() may run in a test)."""
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


def _sync(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _autocast(protocol: Protocol, device: torch.device):
    if protocol.amp == 'none':
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.float16 if protocol.amp == 'fp16' else torch.bfloat16)


def _rss_bytes() -> Optional[int]:
    try:
        with open('/proc/self/statm') as statm:
            return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        return None


def _peak_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def time_steps(step, protocol: Protocol, device: torch.device):
    """(wall seconds, process CPU seconds) of each timed run of ``protocol.iters`` steps, after the warm-up."""
    for _ in range(protocol.warmup):
        step()
    _sync(device)
    wall, cpu = [], []
    for _ in range(protocol.runs):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(protocol.iters):
            step()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _classifier_steps(model: nn.Module, mode: str, protocol: Protocol, device: torch.device, height: int,
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


def _config_steps(cfg, mode: str, protocol: Protocol, device: torch.device, height: int, width: int):
    """test_step / train_step of an mmdet or mmseg model on synthetic images of (height, width)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    # one process, one device: SyncBN (the segmentation configs) becomes BN, as in mmseg's own benchmark tool
    model = revert_sync_batchnorm(build_from_config(cfg)).to(device)
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


def measure(case: dict) -> dict:
    """Run one measurement described by ``case`` (see :func:`_case`) in this process; returns its result row."""
    protocol = Protocol(**case['protocol'])
    with backend_settings(protocol):
        return _measure(case, protocol)


def _measure(case: dict, protocol: Protocol) -> dict:
    device = torch.device(protocol.device)
    height, width = case['shape']
    rss_before = _rss_bytes()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    if case['kind'] == 'config':
        cfg = load_config(case['model'])
        source = cfg.default_scope
        with config_scope(source):
            model, step = _config_steps(cfg, case['mode'], protocol, device, height, width)
            seconds, cpu_seconds = time_steps(step, protocol, device)
    else:
        model, source = build_model(case['model'], case['peer_source'])
        model.to(device)
        step = _classifier_steps(model, case['mode'], protocol, device, height, width)
        seconds, cpu_seconds = time_steps(step, protocol, device)

    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device)
    elif protocol.isolate and rss_before is not None:
        peak = _peak_rss_bytes() - rss_before
    else:  # the process peak would include earlier measurements
        peak = None
    images = protocol.bs * protocol.iters
    img_s = [images / s for s in seconds]
    precision = f'amp_{protocol.amp}' if protocol.amp != 'none' else 'fp32'
    row = dict(
        model=case['name'], mode=f"{case['mode']}_{precision}", bs=protocol.bs,
        res=height if height == width else f'{height}x{width}',
        params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 6),
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


def run_case(case: dict) -> dict:
    """:func:`measure` in a fresh process when the protocol isolates measurements, else here."""
    if not case['protocol']['isolate']:
        return measure(case)
    context = multiprocessing.get_context('spawn')
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, case).result()


def _case(kind: str, name: str, mode: str, protocol: Protocol, shape, peer_source='auto', label=None) -> dict:
    return dict(kind=kind, model=name, name=label or name, mode=mode, protocol=asdict(protocol), shape=tuple(shape),
                peer_source=peer_source)


# ----------------------------------------------------------------------------------------------------------------
# Environment

def environment(protocol: Protocol) -> dict:
    device = torch.device(protocol.device)
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions['mmmsvmamba'] = mmmsvmamba.__version__
    from mmmsvmamba.ops.backend import resolve_backend
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scan_backend = resolve_backend(None, device)
    env = dict(
        device=_device_name(device), device_type=device.type, threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(), python=platform.python_version(), torch=torch.__version__,
        cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        packages=versions, scan_backend=scan_backend,
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
        cudnn_benchmark=torch.backends.cudnn.benchmark)
    if hasattr(os, 'getloadavg'):
        env['load_avg_start'] = [round(x, 2) for x in os.getloadavg()]
    return env


def _device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            names = [line.split(':', 1)[1].strip() for line in cpuinfo if line.startswith('model name')]
        return f'{names[0]} ({len(names)} logical CPUs)' if names else platform.processor()
    except OSError:
        return platform.processor() or 'cpu'


# ----------------------------------------------------------------------------------------------------------------
# Commands

def cmd_classify(args, protocol: Protocol, env: dict) -> dict:
    ours = [canonical_name(m) for m in args.models]
    peers = _peers(args)
    results = []
    for name in ours + peers:
        for mode in args.modes:
            results.append(run_case(_case('classify', name, mode, protocol, (protocol.res, protocol.res),
                                          args.peer_source)))
            _progress(results[-1])
    ratios = []
    for row in results:
        if row['model'] not in ours:
            continue
        for peer in results:
            if peer['model'] in peers and peer['mode'] == row['mode']:
                ratio = dict(model=row['model'], mode=row['mode'], peer=peer['model'],
                             img_s_ratio=row['img_s'] / peer['img_s'],
                             peak_MB_ratio=_ratio(row['peak_MB'], peer['peak_MB']))
                if 'img_per_cpu_s' in row:
                    ratio['img_per_cpu_s_ratio'] = row['img_per_cpu_s'] / peer['img_per_cpu_s']
                ratios.append(ratio)
        anchor = H100_ANCHORS.get((row['model'], row['mode'].split('_')[0]))
        if anchor and 'H100' in env['device'] and row['mode'].endswith('amp_fp16') and row['bs'] == 128 \
                and row['res'] == 224:
            row['official_h100'] = dict(anchor, img_s_ratio=row['img_s'] / anchor['img_s'],
                                        peak_MB_ratio=_ratio(row['peak_MB'], anchor['peak_MB']))
    return dict(results=results, ratios=ratios)


def cmd_scaling(args, protocol: Protocol, env: dict) -> dict:
    sizes = [_parse_size(s) for s in args.sizes]
    results = []
    for name in [canonical_name(m) for m in args.models] + _peers(args):
        for height, width in sizes:
            results.append(run_case(_case('classify', name, 'infer', protocol, (height, width), args.peer_source)))
            _progress(results[-1])
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


def cmd_config(args, protocol: Protocol, env: dict) -> dict:
    results = []
    for path in args.configs:
        cfg = load_config(path)
        if cfg.default_scope not in ('mmdet', 'mmseg'):
            raise ValueError(f'{path}: `config` benchmarks detection and segmentation configs (default_scope mmdet or '
                             f'mmseg); for a classifier use `classify` with its arch')
        name = os.path.splitext(os.path.basename(path))[0]
        defaults = CONFIG_SHAPES[cfg.default_scope]
        for mode in args.modes:
            shape = tuple(getattr(args, f'{mode}_shape') or defaults[mode])
            bs = args.bs or (cfg.train_dataloader.batch_size if mode == 'train' else 1)
            case_protocol = Protocol(**{**asdict(protocol), 'bs': bs})
            results.append(run_case(_case('config', path, mode, case_protocol, shape, label=name)))
            _progress(results[-1])
    return dict(results=results)


# Detection: test at the FLOP-count size (the official (3, 1280, 800)), train at the largest training scale
# (Resize (1333, 800) keeping the ratio). Segmentation: test at the FLOP-count size (512, 2048) (the largest
# Resize (2048, 512) output), train at the 512x512 crop. All (H, W).
CONFIG_SHAPES = {'mmdet': dict(infer=(1280, 800), train=(800, 1333)),
                 'mmseg': dict(infer=(512, 2048), train=(512, 512))}


def _parse_size(text: str):
    try:
        parts = [int(p) for p in str(text).lower().split('x')]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) <= 0:
        raise ValueError(f'a size is N or HxW with positive ints, got {text!r}')
    return parts[0], parts[-1]


def _ratio(a, b):
    return a / b if a is not None and b else None


def _progress(row: dict):
    peak = f"{row['peak_MB']:.0f} MB" if row['peak_MB'] is not None else 'n/a'
    print(f"  {row['model']:<28} {row['mode']:<18} bs {row['bs']:<4} res {str(row['res']):<9} "
          f"{row['img_s']:9.2f} img/s  {row['ms_per_img']:9.1f} ms/img  peak {peak}", file=sys.stderr, flush=True)


def format_tables(output: dict) -> str:
    env = output['env']
    lines = [f"device: {env['device']}, torch {env['torch']}, CUDA {env['cuda']}, threads {env['threads']}, "
             f"scan backend {env['scan_backend']}"]
    cpu = env['device_type'] == 'cpu'
    lines.append(f"{'model':<30} {'mode':<15} {'bs':>4} {'res':>9} {'params M':>9} {'img/s':>9} {'peak MB':>8}"
                 + (f" {'img/CPU-s':>10} {'CPU util':>8}" if cpu else ''))
    for row in output['results']:
        peak = f"{row['peak_MB']:8.0f}" if row['peak_MB'] is not None else f"{'n/a':>8}"
        line = (f"{row['model']:<30} {row['mode']:<15} {row['bs']:>4} {str(row['res']):>9} "
                f"{row['params_M']:>9.2f} {row['img_s']:>9.2f} {peak}")
        if cpu:
            line += f" {row['img_per_cpu_s']:>10.2f} {row['cpu_utilisation']:>8.2f}"
        lines.append(line)
    for ratio in output.get('ratios', []):
        peak = f"{ratio['peak_MB_ratio']:.2f}x" if ratio['peak_MB_ratio'] is not None else 'n/a'
        per_cpu = f", per CPU-second {ratio['img_per_cpu_s_ratio']:.2f}x" if 'img_per_cpu_s_ratio' in ratio else ''
        lines.append(f"{ratio['model']} / {ratio['peer']} ({ratio['mode']}): throughput {ratio['img_s_ratio']:.2f}x"
                     f"{per_cpu}, peak memory {peak}")
    for name, entry in output.get('scaling', {}).items():
        for key, what in (('ms_per_img', 'wall'), ('cpu_ms_per_img', 'CPU')):
            if f'{key}_1024_over_512' in entry:
                lines.append(f"{name}: {what} time per image at 1024 / at 512 = {entry[f'{key}_1024_over_512']:.2f}")
    return '\n'.join(lines)


# ----------------------------------------------------------------------------------------------------------------
# Plots

def cmd_plot(args) -> list:
    """Accuracy vs inference throughput, and time per image vs input size. CPU results plot the per-CPU-second
    figures (robust to other load on the machine); CUDA results the wall-clock ones."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    outputs = []
    for path in args.results:
        with open(path) as f:
            outputs.append(json.load(f))
    os.makedirs(args.out_dir, exist_ok=True)
    written = []

    classify = [out for out in outputs if out.get('command') == 'classify']
    infer_rows = [row for out in classify for row in out['results']
                  if row['mode'].startswith('infer') and row['model'] in TOP1]
    if infer_rows:
        key, unit = ('img_per_cpu_s', 'img per CPU-second') if 'img_per_cpu_s' in infer_rows[0] else ('img_s', 'img/s')
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for index, row in enumerate(sorted(infer_rows, key=lambda r: TOP1[r['model']])):
            ours = row['model'] not in PEERS
            ax.scatter(row[key], TOP1[row['model']], color='tab:red' if ours else 'tab:blue',
                       marker='o' if ours else 's')
            # labels alternate right / left of their points (sorted by accuracy) so that neighbours do not collide
            ax.annotate(f"MSVMamba-{row['model']}" if ours else row['model'], (row[key], TOP1[row['model']]),
                        textcoords='offset points', xytext=(5, 2) if index % 2 else (-5, 2),
                        ha='left' if index % 2 else 'right', fontsize=8)
        ax.margins(x=0.35)
        ax.set_xlabel(f"inference throughput ({unit}), {infer_rows[0]['mode']}, batch {infer_rows[0]['bs']}")
        ax.set_ylabel('ImageNet top-1 (%), published')
        ax.set_title(f"accuracy vs throughput, {_short(classify[0]['env']['device'])}", fontsize=9)
        ax.grid(alpha=0.3)
        written.append(_save(fig, os.path.join(args.out_dir, f'benchmark_accuracy_vs_throughput_{args.tag}.png')))

    scaling = [out for out in outputs if out.get('command') == 'scaling']
    scaling_rows = [row for out in scaling for row in out['results']]
    if scaling_rows:
        key, unit = ('cpu_ms_per_img', 'CPU ms') if 'cpu_ms_per_img' in scaling_rows[0] else ('ms_per_img', 'ms')
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for name in dict.fromkeys(row['model'] for row in scaling_rows):
            rows = sorted((r for r in scaling_rows if r['model'] == name), key=_pixels)
            square = [r for r in rows if isinstance(r['res'], int)]
            line, = ax.plot([_pixels(r) / 1e6 for r in square], [r[key] for r in square], marker='o',
                            label=f'MSVMamba-{name}' if name not in PEERS else name)
            for row in rows:  # detection-style sizes: same colour, unconnected, labelled
                if not isinstance(row['res'], int):
                    ax.scatter(_pixels(row) / 1e6, row[key], marker='D', color=line.get_color())
                    ax.annotate(row['res'], (_pixels(row) / 1e6, row[key]), textcoords='offset points',
                                xytext=(-42, 2), fontsize=7)
            if square and name == scaling_rows[0]['model']:  # time proportional to pixels, through the first point
                x0, y0 = _pixels(square[0]) / 1e6, square[0][key]
                xs = [x0, _pixels(square[-1]) / 1e6]
                ax.plot(xs, [y0 * x / x0 for x in xs], ':', color='grey', label='time proportional to pixels')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('input pixels (millions)')
        ax.set_ylabel(f'inference time per image ({unit})')
        ax.set_title(f"time vs input size, {_short(scaling[0]['env']['device'])}", fontsize=9)
        ax.grid(alpha=0.3, which='both')
        ax.legend(fontsize=8)
        written.append(_save(fig, os.path.join(args.out_dir, f'benchmark_latency_vs_resolution_{args.tag}.png')))
    if not written:
        raise ValueError('no classify or scaling results in the given files')
    return written


def _pixels(row: dict) -> int:
    height, width = _parse_size(row['res'])
    return height * width


def _short(device: str) -> str:
    return device.split(' (')[0][:40]


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# ----------------------------------------------------------------------------------------------------------------
# CLI

def parse_args(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cuda or cpu (default: cuda when available)')
    common.add_argument('--bs', type=int, help='batch size (default: classify 128 on CUDA, 8 on CPU; scaling 16 on '
                                               'CUDA, 1 on CPU; config 1 for infer, the config\'s for train)')
    common.add_argument('--res', type=int, help='square input size for classify (default 224)')
    common.add_argument('--amp', choices=('fp16', 'bf16', 'none'),
                        help='autocast precision (default fp16 on CUDA, none = fp32 on CPU)')
    common.add_argument('--warmup', type=int, help='warm-up steps (default 10 on CUDA, 1 on CPU)')
    common.add_argument('--runs', type=int, help='timed runs, the median is reported (default 5 on CUDA, 3 on CPU)')
    common.add_argument('--iters', type=int, help='steps per timed run (default 10 on CUDA, 1 on CPU)')
    common.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s choice)')
    common.add_argument('--tf32', choices=('on', 'off', 'default'), default='default',
                        help='TF32 for CUDA matmul and cuDNN (default: keep PyTorch\'s defaults; both are reported)')
    common.add_argument('--no-cudnn-benchmark', action='store_true', help='disable cudnn.benchmark (default on)')
    common.add_argument('--no-isolate', action='store_true',
                        help='CPU: measure in this process (faster; no peak memory is reported then)')
    common.add_argument('--json', action='store_true', help='print the JSON result instead of tables')
    common.add_argument('--out', help='also write the JSON result to this file')

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    classify = sub.add_parser('classify', parents=[common], help='ImageNet classifiers, ours and the peers')
    classify.add_argument('models', nargs='*', default=['tiny'], help='MSVMamba archs (default tiny)')
    classify.add_argument('--peers', nargs='*', help=f'peers (default {" ".join(PEERS)}, when mmpretrain or '
                                                     'torchvision is installed)')
    classify.add_argument('--modes', nargs='+', choices=('infer', 'train'), default=['infer', 'train'])
    classify.add_argument('--peer-source', choices=('auto', 'mmpretrain', 'torchvision'), default='auto',
                          help='where the peers come from (default: mmpretrain, else torchvision)')
    scaling = sub.add_parser('scaling', parents=[common], help='inference time per image against input size')
    scaling.add_argument('models', nargs='*', default=['tiny'], help='MSVMamba archs (default tiny)')
    scaling.add_argument('--peers', nargs='*', help='peers (default swin-t, when mmpretrain or torchvision is '
                                                    'installed)')
    scaling.add_argument('--sizes', nargs='+', default=list(DEFAULT_SIZES), help='N or HxW (default: %(default)s)')
    scaling.add_argument('--peer-source', choices=('auto', 'mmpretrain', 'torchvision'), default='auto')
    config = sub.add_parser('config', parents=[common], help='detection / segmentation configs: test_step and '
                                                             'train_step on synthetic data')
    config.add_argument('configs', nargs='+', help='mmdet or mmseg config files')
    config.add_argument('--modes', nargs='+', choices=('infer', 'train'), default=['infer', 'train'])
    config.add_argument('--infer-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='test input (default: detection 1280 800, segmentation 512 2048)')
    config.add_argument('--train-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='training input (default: detection 800 1333, segmentation 512 512)')
    plot = sub.add_parser('plot', help='PNG plots from classify / scaling JSON results')
    plot.add_argument('results', nargs='+', help='JSON files written with --out')
    plot.add_argument('--out-dir', default='docs')
    plot.add_argument('--tag', default='cpu', help='suffix of the PNG names (default cpu)')
    return parser.parse_args(argv)


def make_protocol(args) -> Protocol:
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: no CUDA device is available; use --device cpu')
    gpu = device.type == 'cuda'
    protocol = Protocol(
        device=str(device), bs=args.bs or DEFAULT_BS[args.command][0 if gpu else 1], res=args.res or 224,
        amp=args.amp or ('fp16' if gpu else 'none'), warmup=args.warmup if args.warmup is not None else
        (10 if gpu else 1), runs=args.runs or (5 if gpu else 3), iters=args.iters or (10 if gpu else 1),
        threads=args.threads or torch.get_num_threads(), tf32={'on': True, 'off': False}.get(args.tf32),
        cudnn_benchmark=not args.no_cudnn_benchmark, isolate=not gpu and not args.no_isolate)
    if min(protocol.bs, protocol.res, protocol.runs, protocol.iters) <= 0 or protocol.warmup < 0:
        raise ValueError('--bs, --res, --runs and --iters must be positive, --warmup non-negative')
    if gpu and protocol.amp == 'none' and protocol.tf32 is None:
        warnings.warn('fp32 on CUDA with PyTorch\'s TF32 defaults: pass --tf32 on/off to fix the precision')
    return protocol


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.command == 'plot':
            for path in cmd_plot(args):
                print(path)
            return
        protocol = make_protocol(args)
        with backend_settings(protocol):
            env = environment(protocol)
            commands = dict(classify=cmd_classify, scaling=cmd_scaling, config=cmd_config)
            output = dict(command=args.command, protocol=asdict(protocol), env=env)
            output.update(commands[args.command](args, protocol, env))
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as error:
        sys.exit(f'benchmark.py: error: {error}')
    if hasattr(os, 'getloadavg'):
        output['env']['load_avg_end'] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(output, indent=1)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    print(text if args.json else format_tables(output))


if __name__ == '__main__':
    main()
