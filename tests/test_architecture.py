"""The package layering: imports only go downward, scripts are imported by nothing, no import cycle.

    dnnlib -> torch_utils -> training -> metrics -> fsgan -> scripts

Every import statement counts, also those inside functions (a lazy import is still a dependency). Cycles are
checked between modules on their module-level imports (the ones that run at import time).
"""
import ast
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ('dnnlib', 'torch_utils', 'training', 'metrics', 'fsgan', 'scripts')


def module_name(path):
    """'fsgan/methods/fsgan.py' -> 'fsgan.methods.fsgan'; a package's __init__.py -> the package."""
    rel = os.path.relpath(path, ROOT)[:-len('.py')].split(os.sep)
    return '.'.join(rel[:-1] if rel[-1] == '__init__' else rel)


def project_files():
    for layer in LAYERS:
        for folder, _dirs, files in os.walk(os.path.join(ROOT, layer)):
            for name in sorted(files):
                if name.endswith('.py'):
                    yield os.path.join(folder, name)


def imports_of(path, module_level_only=False):
    """[(line, imported module)] of one file; relative imports resolved; project modules only."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    here = module_name(path).split('.')
    package = here if path.endswith('__init__.py') else here[:-1]
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, f'{base}.{alias.name}') for alias in node.names]
    return [(line, name) for line, name in found if name.split('.')[0] in LAYERS]


def layer_of(module):
    return LAYERS.index(module.split('.')[0])


def test_imports_only_go_downward_and_nothing_imports_scripts():
    wrong = []
    for path in project_files():
        own = layer_of(module_name(path))
        for line, name in imports_of(path):
            if layer_of(name) > own or (name.split('.')[0] == 'scripts' and own == LAYERS.index('scripts')):
                wrong.append(f'{os.path.relpath(path, ROOT)}:{line} imports {name}')
    assert not wrong, 'upward imports:\n' + '\n'.join(wrong)


def existing_module(name, modules):
    """The longest prefix of a dotted import target that is a project module ('fsgan.run.launch' -> 'fsgan.run')."""
    parts = name.split('.')
    for end in range(len(parts), 0, -1):
        if '.'.join(parts[:end]) in modules:
            return '.'.join(parts[:end])
    return None


def find_cycle(graph):
    """One cycle [m0, m1, ..., m0] of a {module: set(modules)} graph, or None (iterative depth-first search)."""
    state = {}
    for start in sorted(graph):
        if start in state:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        state[start] = 'open'
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 'done'
                stack.pop()
            elif state.get(child) == 'open':
                path = [n for n, _ in stack]
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = 'open'
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_no_import_cycle_at_module_level():
    paths = {module_name(p): p for p in project_files()}
    graph = {}
    for module, path in paths.items():
        targets = {existing_module(name, paths) for _line, name in imports_of(path, module_level_only=True)}
        graph[module] = {t for t in targets if t is not None and t != module}
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


@pytest.mark.parametrize('graph, has_cycle', [({'a': {'b'}, 'b': {'c'}, 'c': set()}, False),
                                              ({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}, True),
                                              ({'a': {'a2'}, 'a2': set(), 'b': {'b'}}, True)])
def test_the_cycle_finder_finds_cycles(graph, has_cycle):
    assert (find_cycle(graph) is not None) == has_cycle


def test_the_layer_check_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """A function-level upward import and a relative import are both found (the check can fail)."""
    monkeypatch.setattr(sys.modules[__name__], 'ROOT', str(tmp_path))
    pkg = tmp_path / 'training'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'x.py').write_text('from . import y\n\ndef f():\n    from fsgan import compare\n')
    found = [name for _line, name in imports_of(str(pkg / 'x.py'))]
    assert sorted(found) == ['fsgan.compare', 'training.y']
    assert layer_of('fsgan.compare') > layer_of(module_name(str(pkg / 'x.py')))


MAX_FUNCTION_LINES = 60
LIBRARY = ('dnnlib', 'torch_utils', 'training', 'metrics', 'fsgan')


def long_functions(path, limit=MAX_FUNCTION_LINES):
    """['file:line name (N lines)'] of the functions in path longer than `limit` lines, docstring included."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    return [f'{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)'
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_no_library_function_is_over_60_lines():
    found = [line for path in project_files() if module_name(path).split('.')[0] in LIBRARY
             for line in long_functions(path)]
    assert not found, 'split these:\n' + '\n'.join(found)


def test_the_length_check_counts_lines(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text('def short():\n    return 1\n\n\ndef long():\n' + '    x = 1\n' * 60 + '    return x\n')
    assert [line.split()[1] for line in long_functions(str(path))] == ['long']
