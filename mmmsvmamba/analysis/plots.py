"""PNG plots of benchmark results (``mmmsvmamba.analysis.benchmark`` JSON): accuracy against throughput, and time
per image against input size. Needs matplotlib."""
import json
import os
from typing import List, Sequence

from .benchmark import parse_size
from .models import PEERS
from .published import imagenet_top1


def plot_results(paths: Sequence[str], out_dir: str, tag: str = 'cpu') -> List[str]:
    """Accuracy vs inference throughput, and time per image vs input size, from benchmark JSON files; returns the
    PNG paths. CPU results plot the per-CPU-second figures (robust to other load on the machine); CUDA results the
    wall-clock ones."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    outputs = []
    for path in paths:
        with open(path) as f:
            outputs.append(json.load(f))
    os.makedirs(out_dir, exist_ok=True)
    top1 = imagenet_top1()  # the published accuracy each model is plotted at
    written = []

    classify = [out for out in outputs if out.get('command') == 'classify']
    infer_rows = [row for out in classify for row in out['results']
                  if row['mode'].startswith('infer') and row['model'] in top1]
    if infer_rows:
        key, unit = ('img_per_cpu_s', 'img per CPU-second') if 'img_per_cpu_s' in infer_rows[0] else ('img_s', 'img/s')
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for index, row in enumerate(sorted(infer_rows, key=lambda r: top1[r['model']])):
            ours = row['model'] not in PEERS
            ax.scatter(row[key], top1[row['model']], color='tab:red' if ours else 'tab:blue',
                       marker='o' if ours else 's')
            # labels alternate right / left of their points (sorted by accuracy) so that neighbours do not collide
            ax.annotate(f"MSVMamba-{row['model']}" if ours else row['model'], (row[key], top1[row['model']]),
                        textcoords='offset points', xytext=(5, 2) if index % 2 else (-5, 2),
                        ha='left' if index % 2 else 'right', fontsize=8)
        ax.margins(x=0.35)
        ax.set_xlabel(f"inference throughput ({unit}), {infer_rows[0]['mode']}, batch {infer_rows[0]['bs']}")
        ax.set_ylabel('ImageNet top-1 (%), published')
        ax.set_title(f"accuracy vs throughput, {_short(classify[0]['env']['device'])}", fontsize=9)
        ax.grid(alpha=0.3)
        written.append(_save(fig, os.path.join(out_dir, f'benchmark_accuracy_vs_throughput_{tag}.png')))

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
        written.append(_save(fig, os.path.join(out_dir, f'benchmark_latency_vs_resolution_{tag}.png')))
    if not written:
        raise ValueError('no classify or scaling results in the given files')
    return written


def _pixels(row: dict) -> int:
    height, width = parse_size(row['res'])
    return height * width


def _short(device: str) -> str:
    return device.split(' (')[0][:40]


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
