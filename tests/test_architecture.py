"""The import rules of docs/architecture.md ("Map"): which part of the package may import which at module level,
which parts stay free of OpenMMLab, and that no tool imports another. Read from the source (ast), so a new import
that breaks the layering fails here before it becomes an import cycle or a hard dependency. Also read from the
source: checkpoint contents are handled only in mmmsvmamba/models/checkpoint/ (docs/architecture.md, "Checkpoints")."""
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
    'timing': set(),
    'ops': set(),
    'models': {'ops'},
    'registry': {'models'},
    '__init__': {'ops', 'models', 'registry'},
    'analysis': {'__init__', 'ops', 'models', 'timing'},
    'deploy': {'ops', 'models', 'registry', 'timing'},
    'datasets': set(),
    'evaluation': set(),
    'engine': {'cli', 'ops', 'models', 'registry', 'datasets', 'evaluation'},
}
# parts that must import with torch alone (a GPU box without OpenMMLab runs the backbone, the op and the benchmarks)
TORCH_ONLY = {'cli', 'stacks', 'timing', 'ops', 'models', 'registry', '__init__', 'analysis', 'deploy'}


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


# What handling a checkpoint's contents looks like in code: choosing its state-dict entry, stripping DDP's prefix,
# loading a state dict (a key check of its own: torch's strict flag) or asking for its key lists. Only
# mmmsvmamba/models/checkpoint/ may do it; everything else calls select_state_dict / load_weights / check_keys.
CHECKPOINT_PACKAGE = os.path.join(PACKAGE, 'models', 'checkpoint')
CHECKPOINT_STRINGS = {'module.', 'model_ema'}
CHECKPOINT_NAMES = {'STATE_DICT_KEYS', 'MODULE_PREFIX', 'load_state_dict', 'load_checkpoint', 'missing_keys',
                    'unexpected_keys', 'strip_prefix'}


def _checkpoint_handling(path: str) -> list:
    """(line, what) of each place in a source file that handles checkpoint contents itself."""
    found = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Constant) and node.value in CHECKPOINT_STRINGS:
            found.append((node.lineno, repr(node.value)))
        elif isinstance(node, ast.Name) and node.id in CHECKPOINT_NAMES:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in CHECKPOINT_NAMES:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.alias) and node.name in CHECKPOINT_NAMES:
            found.append((node.lineno, node.name))
    return found


def _source_files():
    for top in (PACKAGE, os.path.join(ROOT, 'tools')):
        for folder, _, files in os.walk(top):
            for name in sorted(files):
                if name.endswith('.py') and not folder.startswith(CHECKPOINT_PACKAGE):
                    yield os.path.join(folder, name)


def test_checkpoints_are_handled_only_in_the_checkpoint_package():
    found = {os.path.relpath(path, ROOT): hits for path in _source_files() if (hits := _checkpoint_handling(path))}
    assert not found, f'checkpoint selection / prefix stripping / key checks outside models/checkpoint/: {found}'


def test_the_checkpoint_rule_catches_a_copy_of_the_old_export_code(tmp_path):
    copy = tmp_path / 'copy.py'
    copy.write_text("""def load(model, ckpt):
    from mmmsvmamba.models.checkpoint import STATE_DICT_KEYS
    state = next((ckpt[k] for k in STATE_DICT_KEYS if isinstance(ckpt.get(k), dict)), ckpt)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
""")
    assert sorted(what for _, what in _checkpoint_handling(str(copy))) == [
        "'module.'", "'module.'", 'STATE_DICT_KEYS', 'STATE_DICT_KEYS', 'load_state_dict']
    clean = tmp_path / 'clean.py'
    clean.write_text('from mmmsvmamba.models.checkpoint import load_weights\n\n\ndef load(model, path):\n'
                     '    return load_weights(model, path)\n')
    assert _checkpoint_handling(str(clean)) == []

