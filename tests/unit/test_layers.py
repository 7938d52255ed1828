"""The import direction of the source tree: a lower layer never imports a higher one, and no
module imports itself back through a cycle (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import embedserve

SOURCE = Path(embedserve.__file__).parent
# Lowest first. A module may import its own layer or lower ones only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("arrays", "errors", "faults", "logs", "stats", "settings", "models", "pooling"),
    ("output_dtypes", "postprocess", "encodings", "params"),
    ("tokenization", "input_checks", "prompts", "truncation", "backends"),
    ("executor",),
    ("scheduler",),
    ("calibration", "result_cache", "runner"),
    ("tokenizer_pool", "request_tokens", "quantization", "deadlines", "engine"),
    ("ranking",),
    ("library", "verify", "verify_scores", "export", "bench", "jobs", "evaluation"),
    ("api", "testing", "testing_ray"),
    ("server", "ray_replicas", "cli", "__main__", "__init__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    relative = path.relative_to(SOURCE).with_suffix("")
    parts = [part for part in relative.parts if part != "__init__"] or ["__init__"]
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """Every `embedserve.*` module the file imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {
            name.removeprefix("embedserve.") for name in names if name.startswith("embedserve.")
        }
    return found


def _build_graph() -> dict[str, set[str]]:
    return {module_name(path): imported(path) for path in SOURCE.rglob("*.py")}


# Parsed once, at collection, before any test starts threads: CPython 3.11's AST constructor
# can raise a spurious SystemError when other threads run (python/cpython#106905).
_GRAPH = _build_graph()


def graph() -> dict[str, set[str]]:
    """Module -> the embedserve modules it imports (a fresh copy)."""
    return {module: set(targets) for module, targets in _GRAPH.items()}


def top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def test_every_module_has_a_layer() -> None:
    missing = sorted({top(module) for module in graph()} - set(RANK))
    assert not missing, f"add these to LAYERS: {missing}"


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if RANK[top(target)] > RANK[top(module)]
    ]
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle_between_modules() -> None:
    edges = graph()
    modules = set(edges)

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(filter(None, map(resolve, edges[module]))):
            if target == module or target.startswith(module + "."):
                continue  # a package importing its own submodules
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_layering_test_can_fail() -> None:
    """A fake edge from the bottom to the top is reported (the check is not vacuous)."""
    edges = graph()
    edges["settings.model"] = {*edges["settings.model"], "api.routes"}
    assert any(RANK[top(t)] > RANK[top("settings.model")] for t in edges["settings.model"])
