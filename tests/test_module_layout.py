"""The package's module graph: no import cycles between modules or between packages (function-level imports
included), function-level imports only where they keep a heavy optional module off the start-up path, and the
command line reaching the rest only through the API and its presenters."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import specforge

PACKAGE = Path(specforge.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _owner(name: str) -> str | None:
    """The specforge module that ``name`` (a module or a name inside one) belongs to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


#: The heavy modules: the optional ones and their extras (the server is starlette, uvicorn and their anyio; onnx
#: is protobuf's ``google``), the standard library's networking, whose imports (ssl, email, selectors) cost
#: ``validate`` a tenth of its start, and hashlib, which loads OpenSSL: only these are imported inside functions, so
#: that ``specforge validate`` starts without them.
HEAVY = {
    "asyncio",
    "hashlib",
    "http",
    "ssl",
    "urllib.request",
    "google",
    "onnx",
    "onnxruntime",
    "PIL",
    "matplotlib",
    "optuna",
    "ray",
    "torch",
    "starlette",
    "uvicorn",
    "anyio",
    "pyarrow",
    "tensorboardX",
    "numba",
}


def _imported_names(module: str, node: ast.AST) -> list[str]:
    """The dotted names an import statement ``node`` in ``module`` brings in (empty for other statements)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parent + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names]


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def imports_of(module: str) -> set[str]:
    """Every specforge module ``module`` imports, wherever the import statement is."""
    names = [name for node in ast.walk(_tree(module)) for name in _imported_names(module, node)]
    return {owner for owner in map(_owner, names) if owner and owner != module}


def _function_imports(module: str) -> list[tuple[int, str]]:
    """``(line, name)`` of every import statement inside a function of ``module``."""
    return [
        (node.lineno, name)
        for function in ast.walk(_tree(module))
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
        for name in _imported_names(module, node)
    ]


def _top_level_imports(module: str) -> list[str]:
    """The names ``module`` imports when it is imported: outside functions and ``if TYPE_CHECKING:``."""
    found: list[str] = []
    pending: list[ast.AST] = list(_tree(module).body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            pending.extend(statement for statement in node.body if isinstance(node, ast.ClassDef))
        elif isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            pending.extend(node.orelse)
        else:
            found += _imported_names(module, node)
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def _is_heavy(name: str) -> bool:
    return any(name == heavy or name.startswith(f"{heavy}.") for heavy in HEAVY)


def loads_heavy(module: str, seen: set[str] | None = None) -> bool:
    """Whether importing the specforge ``module`` imports a heavy module (directly or through others)."""
    seen = set() if seen is None else seen
    seen.add(module)
    for name in _top_level_imports(module):
        owner = _owner(name)
        if _is_heavy(name) or (owner and owner not in seen and loads_heavy(owner, seen)):
            return True
    return False


def package_of(module: str) -> str:
    """``specforge.graph.dag`` -> ``graph``; a module directly in specforge/ is its own package."""
    return module.split(".")[1] if module != "specforge" else "specforge"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back():
    assert cycles({module: imports_of(module) for module in MODULES}) == []


def test_no_package_imports_itself_back():
    graph: dict[str, set[str]] = {package_of(module): set() for module in MODULES}
    for module in MODULES:
        graph[package_of(module)] |= {package_of(target) for target in imports_of(module)} - {package_of(module)}
    assert cycles(graph) == []


def test_functions_import_only_heavy_modules():
    """A function-level import delays a heavy module, or a specforge module that loads one; anything else is
    imported at the top of its module."""
    misplaced = [
        f"{module}:{line} imports {name}"
        for module in MODULES
        for line, name in _function_imports(module)
        if not _is_heavy(name) and not (_owner(name) and loads_heavy(_owner(name)))
    ]
    assert misplaced == []


def test_the_heavy_module_finder_finds_them():
    assert loads_heavy("specforge.export.onnx")
    assert not loads_heavy("specforge.spec")


#: What the command line may import of the rest of specforge: the API (``spec_api`` is the part on spec files that
#: ``api`` re-exports), the user errors it turns into exit codes, and the version.
API = {"specforge", "specforge.api", "specforge.spec_api", "specforge.base.errors"}
PRESENTERS = {"specforge.cli.present", "specforge.cli.summary"}


def test_the_command_line_imports_only_the_api_and_its_presenters():
    commands = [module for module in MODULES if module.startswith("specforge.cli.") and module not in PRESENTERS]
    for module in commands:
        outside = {target for target in imports_of(module) if not target.startswith("specforge.cli.")}
        assert outside <= API, module
    assert "specforge.api" in imports_of("specforge.cli.pipeline_commands")
    assert imports_of("specforge.cli.spec_commands") & API == {"specforge.spec_api"}


#: What ``specforge validate`` has no use for: training's loop, runs, export, prediction, serving, sweeps' runner, and
#: the API and commands that import them; the ops layer's computations (the layer kinds it loads for their shape
#: rules load them when they first compute), its thread pools and threadpoolctl; rich's table of emoji codes, which
#: the summary's names cannot hold.
NOT_FOR_VALIDATE = (
    "specforge.api",
    "specforge.cli.pipeline_commands",
    "specforge.cli.present",
    "specforge.training.loop",
    "specforge.runs",
    "specforge.export",
    "specforge.predict",
    "specforge.serve",
    "specforge.sweep.runner",
    "specforge.ops.channels",
    "specforge.ops.convolution",
    "specforge.ops.costs",
    "specforge.ops.linear",
    "specforge.ops.machine",
    "specforge.ops.parallel",
    "threadpoolctl",
    "concurrent.futures",
    "rich.progress",
    "rich._emoji_codes",
)


def test_validate_imports_only_what_it_uses():
    """The command modules are loaded by name as their commands run (``specforge.cli.commands``), which the import
    statements above do not show: this runs ``specforge validate`` and looks at what it imported."""
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(*sorted(sys.modules), file=sys.stderr))\n"
        "from specforge.cli.commands import main\n"
        "main(['validate', '--no-data', sys.argv[1]])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(PACKAGE.parent / "specs" / "mnist.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    imported = result.stderr.split()
    assert "specforge.cli.spec_commands" in imported
    assert [name for name in imported if name.startswith(NOT_FOR_VALIDATE) or _is_heavy(name)] == []
