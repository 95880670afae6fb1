"""The import rules of docs/architecture.md ("Map"): which part of the package may import which at module level,
which parts stay free of OpenMMLab, and that no tool imports another. Read from the source (ast), so a new import
that breaks the layering fails here before it becomes an import cycle or a hard dependency."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'mmmsvmamba')
OPENMMLAB = {'mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain'}

# part of the package -> the parts it may import at module level (itself always); function-level imports are free
ALLOWED = {
    'cli': set(),
    'stacks': set(),
    'ops': set(),
    'models': {'ops'},
    'registry': {'models'},
    '__init__': {'ops', 'models', 'registry'},
    'analysis': {'__init__', 'ops', 'models'},
    'deploy': {'ops', 'models', 'registry'},
    'datasets': set(),
    'evaluation': set(),
    'engine': {'cli', 'ops', 'models', 'registry', 'datasets', 'evaluation'},
}
# parts that must import with torch alone (a GPU box without OpenMMLab runs the backbone, the op and the benchmarks)
TORCH_ONLY = {'cli', 'stacks', 'ops', 'models', 'registry', '__init__', 'analysis', 'deploy'}


def _module_level_imports(path: str, package: str):
    """(absolute module name, names imported) of each import that runs when the file is imported."""
    tree = ast.parse(open(path).read(), path)
    nodes = []
    for node in tree.body:
        nodes.extend(ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node])
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                yield '.'.join(base + ([node.module] if node.module else [])), tuple(a.name for a in node.names)
            else:
                yield node.module, tuple(a.name for a in node.names)


def _package_files():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                package = module[:-len('.__init__')] if name == '__init__.py' else module.rsplit('.', 1)[0]
                yield path, module, package


def _part(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[1] != '__init__' else '__init__'


def _imported_parts(target: str, names: tuple) -> set:
    parts = target.split('.')
    if len(parts) > 1:
        return {parts[1]}
    return {'__init__' if name.startswith('__') else name for name in names} if names else {'__init__'}


FILES = list(_package_files())


def test_every_part_of_the_package_has_a_rule():
    assert {_part(module) for _, module, _ in FILES} == set(ALLOWED)


@pytest.mark.parametrize('path, module, package', FILES, ids=[m for _, m, _ in FILES])
def test_module_level_imports_follow_the_layering(path, module, package):
    part = _part(module)
    for target, names in _module_level_imports(path, package):
        top = target.split('.')[0]
        if top == 'mmmsvmamba':
            bad = _imported_parts(target, names) - ALLOWED[part] - {part}
            assert not bad, f'{module} imports {target} at module level; {part} may import {sorted(ALLOWED[part])}'
        elif part in TORCH_ONLY:
            assert top not in OPENMMLAB, (f'{module} imports {target} at module level: {part} must import with '
                                          'torch alone (import OpenMMLab inside the function that needs it)')


def test_the_layering_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import os\nfrom ..models import MSVMamba\nif True:\n    import mmengine\n')
    assert list(_module_level_imports(str(bad), 'mmmsvmamba.ops')) == [
        ('os', ()), ('mmmsvmamba.models', ('MSVMamba', )), ('mmengine', ())]


def test_no_tool_imports_another_tool():
    tools = os.path.join(ROOT, 'tools')
    names = {name[:-3] for name in os.listdir(tools) if name.endswith('.py')}
    for name in sorted(names):
        path = os.path.join(tools, name + '.py')
        for node in ast.walk(ast.parse(open(path).read(), path)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
            assert not {m.split('.')[0] for m in modules} & names, f'tools/{name}.py imports another tool'
