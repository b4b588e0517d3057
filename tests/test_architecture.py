"""The structure the design promises, checked on the source (issue 9's "done when").

* the engine's modules import each other without a cycle (every import, function-level ones
  included, read from the source with ``ast``);
* only ``engine/factory.py`` asks the model registry for models; the models room imports no task
  room; no engine module imports Gradio; demos reach models only through the factory;
* every engine package says in its ``__init__`` docstring what lives there.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
#: What "asking the registry for a model" means: these names imported from engine.models.
REGISTRY_CALLS = {"load_model", "create_model", "get_spec", "list_models", "register_model",
                  "use_model"}
TASK_ROOMS = ("captioning", "change", "editing", "retrieval", "segmentation", "fewshot")
#: The only dependencies between task rooms, by design: change captioning names regions with
#: the captioning room's captioner component and its article/sentence helpers.
ROOM_DEPENDENCIES = {"change": {"captioning"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(folder: Path) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(folder.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((base, [a.name for a in node.names]))
    return out


def engine_graph() -> dict[str, set[str]]:
    """Module -> engine modules it imports (a ``from pkg import mod`` counts as pkg.mod)."""
    mods = modules(ENGINE)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, names in imports(path):
            if not target.startswith("engine"):
                continue
            for n in names or [None]:
                full = f"{target}.{n}" if n and f"{target}.{n}" in mods else target
                if full in mods and full != name:
                    graph[name].add(full)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            if state.get(child) == 1:
                return path[path.index(child):] + [child]
            if not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_engine_modules_import_each_other_without_cycles():
    graph = engine_graph()
    assert len(graph) > 40  # the scan sees the whole engine
    # a package importing its own submodules is how Python packages work; leave those out
    acyclic = {m: {t for t in ts if not (m and t.startswith(m + "."))} for m, ts in graph.items()}
    assert find_cycle(acyclic) is None, " -> ".join(find_cycle(acyclic))


def test_only_the_factory_asks_the_registry_for_models():
    offenders = []
    for name, path in {**modules(ENGINE), **modules(ROOT / "demos"),
                       "app": ROOT / "app.py"}.items():
        if name == "engine.factory" or name.startswith("engine.models"):
            continue
        for target, names in imports(path):
            if target.startswith("engine.models") and REGISTRY_CALLS & set(names):
                offenders.append(f"{name}: from {target} import {sorted(REGISTRY_CALLS & set(names))}")
            if target in ("engine.models._registry", "engine.models._factory"):
                offenders.append(f"{name}: imports {target}")
    assert not offenders, "\n".join(offenders)


def test_the_models_room_imports_no_task_room():
    graph = engine_graph()
    bad = [f"{m} -> {t}" for m, ts in graph.items() if m.startswith("engine.models")
           for t in ts if t.split(".")[1] in TASK_ROOMS + ("factory", "cli")]
    assert not bad, bad


def test_task_rooms_import_each_other_only_where_the_design_says():
    graph = engine_graph()
    bad = []
    for m, targets in graph.items():
        if m.count(".") and m.split(".")[1] in TASK_ROOMS:
            room = m.split(".")[1]
            for t in targets:
                other = t.split(".")[1] if t.count(".") else ""
                if other in TASK_ROOMS and other != room and \
                        other not in ROOM_DEPENDENCIES.get(room, set()):
                    bad.append(f"{m} -> {t}")
    assert not bad, bad


def test_engine_never_imports_gradio():
    bad = [name for name, path in modules(ENGINE).items()
           if any(t.split(".")[0] == "gradio" for t, _ in imports(path))]
    assert not bad, bad


@pytest.mark.parametrize("package", sorted(
    module_name(p) for p in ENGINE.rglob("__init__.py")))
def test_every_engine_package_says_what_lives_there(package):
    path = ROOT / package.replace(".", "/") / "__init__.py"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split()) >= 8, f"{path} needs a docstring saying what lives there"
