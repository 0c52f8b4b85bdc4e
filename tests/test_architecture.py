"""The house rules of ``src/fastddsp``: role packages that import only downward, no cycle, and
function-level imports only where a heavy or optional dependency needs them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "fastddsp"

# lowest first; a module may import its own layer and the layers below it
LAYERS = [
    {"errors", "limits", "atomic", "progress", "io", "cache"},
    {"dsp"}, {"features"}, {"models"}, {"pipelines"}, {"realtime"}, {"training"}, {"bench"},
    {"pages"}, {"cli"}, {"", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
# third-party modules a function may import: optional extras (rtmidi: MIDI keyboards), a
# platform-only module, ONNX Runtime (a second's import, only paid by the paths that run
# it), scipy.signal (0.6 s: only the paths that filter with it) and pyloudnorm (training)
LAZY_THIRD_PARTY = {"onnxruntime", "sounddevice", "rtmidi", "uvicorn", "matplotlib", "fcntl",
                    "scipy", "pyloudnorm"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported module under fastddsp, or '!' + third-party top name; at module level?; line)
    for every import outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = set()  # module level: outside any function (a `try:` at module level included)
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        top.add(id(node))
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending += [c for c in ast.iter_child_nodes(node)
                        if isinstance(c, ast.stmt | ast.excepthandler)]
    skip = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        at_top = id(node) in top
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - node.level + 1] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import crepe` names a module
                sub = f"{target}.{alias.name}" if target else alias.name
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").is_file() or \
                    (ROOT / sub.replace(".", "/")).is_dir()
                found.append((sub if is_module else target, at_top, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "fastddsp":
                found.append((node.module.partition(".")[2], at_top, node.lineno))
            else:
                found.append(("!" + node.module.split(".")[0], at_top, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.append(("!" + alias.name.split(".")[0], at_top, node.lineno))
    return found


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def rank(module: str) -> int:
    return RANK[module.split(".")[0]]


def test_every_module_belongs_to_a_layer():
    assert {m for m in MODULES if m.split(".")[0] not in RANK} == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_only_downward(module):
    upward = [f"{module}:{line} imports {target}" for target, _, line in imports(MODULES[module])
              if not target.startswith("!") and rank(target) > rank(module)]
    assert upward == []


def test_no_import_cycle():
    graph = {m: {t for t, _, _ in imports(p) if not t.startswith("!") and t in MODULES and t != m}
             for m, p in MODULES.items()}
    # a package's __init__ importing its own modules is how packages export: not a cycle edge
    # back from the modules (they never import their package's __init__)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_function_level_imports_only_for_heavy_or_optional_dependencies():
    """The CLI imports the library inside each command (process start, optional extras);
    elsewhere a function imports only an optional or platform-specific third-party module."""
    found = []
    for module, path in MODULES.items():
        if module.startswith("cli"):
            continue
        for target, at_top, line in imports(path):
            if not at_top and target.lstrip("!") not in LAZY_THIRD_PARTY:
                found.append(f"{module}:{line} imports {target.lstrip('!')} in a function")
    assert found == []


def test_no_function_is_longer_than_80_lines():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert long == []
