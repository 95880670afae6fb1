"""mmmsvmamba.analysis.published: the one source of published figures (configs/metafile.yml, published_peers.yml)
agrees with the official facts where those hold the same figure, and the tables of README.md and docs/model_zoo.md
print exactly what it holds, so that no copy can drift."""
import re
from pathlib import Path

import pytest

from mmmsvmamba import MSVMamba
from mmmsvmamba.analysis.published import imagenet_top1, published, published_figures, published_gflops
from tests.official import ARCH_TO_FACTS, facts

ROOT = Path(__file__).resolve().parents[2]
ARCHS = list(ARCH_TO_FACTS)
ALIASES = dict(nano='n', micro='m', tiny_v1='t-v1', tiny='t', small='s', base='b')
PEERS = ('swin-t', 'convnext-t', 'resnet50')
# a number that is not part of a word such as AP50
NUMBER = re.compile(r'(?<![A-Za-z\d.])\d+(?:\.\d+)?')


def markdown_tables(path: Path) -> list:
    """Every table of a markdown file as a list of {header: cell} rows."""
    tables, lines = [], path.read_text().splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith('|') and re.fullmatch(r'\|( *:?-+:? *\|)+', lines[i + 1].strip()):
            header = [c.strip() for c in line.strip().strip('|').split('|')]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith('|'):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip().strip('|').split('|')))))
            tables.append(rows)
    return tables


def numbers(cell: str) -> list:
    """The numbers a cell states, or [] for a cell that starts with '-' (nothing published)."""
    return [] if cell.startswith('-') else [float(n.replace(',', '')) for n in NUMBER.findall(cell.replace(',', ''))]


def figure(entry, metric):
    return entry.metrics[metric].value if metric in entry.metrics else None


@pytest.mark.parametrize('arch', ARCHS)
def test_classification_figures_are_the_official_ones(arch):
    entry = published(f'msvmamba_{ALIASES[arch]}_in1k')
    official = facts(arch)
    assert (entry.scope, entry.arch, entry.flops_input) == ('mmpretrain', arch, (224, 224))
    assert entry.params == official['params_cls_model']
    assert entry.gflops.value == official['gflops_224']
    assert entry.params_published == official['published_claims']['readme_params']
    assert published_gflops('mmpretrain', arch) == (official['gflops_224'], (224, 224), entry.gflops.source)


def test_every_model_and_peer_has_its_figures():
    entries = published_figures()
    assert [name for name in entries if name in PEERS] == list(PEERS)
    for name, entry in entries.items():
        assert entry.name == name and entry.scope in ('mmpretrain', 'mmdet', 'mmseg')
        assert entry.arch in MSVMamba.arch_zoo if name not in PEERS else entry.arch is None
        assert all(0 < f.value < 100 and f.source for f in entry.metrics.values())
        assert (entry.gflops is None) == (entry.flops_input is None)
    assert set(imagenet_top1()) == set(ARCHS) | set(PEERS)
    assert imagenet_top1()['tiny'] == published('msvmamba_t_in1k').metrics['top1'].value
    with pytest.raises(ValueError, match="no published figures for 'msvmamba_x_in1k'; known: mask_rcnn"):
        published('msvmamba_x_in1k')
    assert published_gflops('mmseg', 'base') is None


@pytest.mark.parametrize('scope, size', [('mmdet', (1280, 800)), ('mmseg', (512, 2048))])
def test_detection_and_segmentation_flops_are_at_the_published_input(scope, size):
    for entry in published_figures().values():
        if entry.scope == scope and entry.gflops is not None:
            assert entry.flops_input == size and entry.gflops.value == int(entry.gflops.value)
            assert published_gflops(scope, entry.arch)[:2] == (entry.gflops.value, size)


def test_readme_table_prints_the_published_figures():
    table = next(t for t in markdown_tables(ROOT / 'README.md') if 'arch' in t[0])
    assert [row['arch'] for row in table] == ARCHS
    for row in table:
        arch, entry = row['arch'], published(f'msvmamba_{ALIASES[row["arch"]]}_in1k')
        spec = MSVMamba.parse_arch(arch)
        assert row['family'] == spec['version'] and row['depths'] == ','.join(map(str, spec['depths']))
        assert row['dims'] == str(spec['dims'][0])
        assert row['params (backbone, 4 out norms)'] == f'{facts(arch)["params_mm_backbone_with_outnorms"]:,}'
        assert row['params (ImageNet classifier)'] == f'{entry.params:,}'
        assert row['GFLOPs @224'] == f'{entry.gflops.value:.2f}'


def _config_name(cell: str) -> str:
    return re.fullmatch(r'\[([\w.-]+)\]\(\.\./configs/\1\.py\)', cell).group(1)


def test_model_zoo_tables_print_the_published_figures():
    tables = [t for t in markdown_tables(ROOT / 'docs' / 'model_zoo.md') if 'config' in t[0]]
    seen = []
    for table in tables:
        for row in table:
            entry = published(_config_name(row['config']))
            seen.append(entry.name)
            ours = row.get('params (ours)') or row['params (ours, exact)']
            assert ours == f'{entry.params:,}', entry.name
            assert row['params (published)'] == (entry.params_published or '-'), entry.name
            flops = row.get('FLOPs') or row['FLOPs (published)']
            if entry.scope == 'mmpretrain':  # published rounded to 0.1G; the metafile holds the counted figure
                assert numbers(flops)[0] == round(entry.gflops.value, 1), entry.name
            else:
                assert flops == ('-' if entry.gflops is None else f'{entry.gflops.value:g}G'), entry.name
            if entry.scope == 'mmdet':
                for column, metric in (('box AP', 'box'), ('mask AP', 'mask')):
                    expected = [figure(entry, f'{metric}_ap{suffix}') for suffix in ('', '50', '75')]
                    assert numbers(row[column]) == [v for v in expected if v is not None], (entry.name, column)
            elif entry.scope == 'mmseg':
                for column, metric in (('mIoU SS', 'miou'), ('mIoU MS', 'miou_ms')):
                    assert numbers(row[column])[:1] == [v for v in [figure(entry, metric)] if v is not None], \
                        (entry.name, column)
            else:
                assert numbers(row['top-1']) == [figure(entry, 'top1')], entry.name
    assert sorted(seen) == sorted(n for n in published_figures() if n not in PEERS)
