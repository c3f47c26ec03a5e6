"""The package layout: no import cycles, no private helpers imported from another module.

The import graph is read from the source (AST), so imports inside functions (deferred imports,
the usual way a cycle hides) count as edges just like top-level ones.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "robokit"
#: the deprecated re-export package resolves old names by string; it has no import edges
SHIMS = {"robokit.lidar"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """``(target module, names imported from it, line)`` for every robokit import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "robokit"]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, name, path.name == "__init__.py")
            if target.split(".")[0] != "robokit":
                continue
            plain = []
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:  # ``from pkg import submodule``
                    found.append((f"{target}.{alias.name}", [], node.lineno))
                else:
                    plain.append(alias.name)
            if plain:
                found.append((target, plain, node.lineno))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        if name in SHIMS:
            continue
        for target, _, _ in imports_of(name, path, modules):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (iterative DFS, white/grey/black)."""
    colour = dict.fromkeys(graph, 0)
    for start in graph:
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child):] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_find_cycle_sees_a_cycle_and_its_absence() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_deferred_import_counts_as_an_edge(tmp_path: Path) -> None:
    source = tmp_path / "robokit" / "x.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from robokit.y import g\n    return g\n")
    modules = {"robokit.x": source, "robokit.y": source}
    assert [t for t, _, _ in imports_of("robokit.x", source, modules)] == ["robokit.y"]


def test_robokit_has_no_import_cycle() -> None:
    modules = all_modules()
    assert len(modules) > 100
    cycle = find_cycle(import_graph(modules))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_another_modules_private_names() -> None:
    modules = all_modules()
    offenders = [
        f"{name}:{line} imports {target}.{item}"
        for name, path in modules.items()
        for target, names, line in imports_of(name, path, modules)
        for item in names
        if item.startswith("_") and not item.startswith("__") and target != name
    ]
    assert offenders == [], "private names imported across modules: " + "; ".join(offenders)


#: perception layering: a package may import only the packages listed (and robokit.core etc.)
PERCEPTION = ("pointcloud", "intact", "detection", "tracking")
ALLOWED = {
    "pointcloud": set(),
    "intact": {"pointcloud"},
    "detection": {"pointcloud", "intact"},
    "tracking": {"pointcloud"},
}


@pytest.mark.parametrize("package", PERCEPTION)
def test_perception_packages_are_layered(package: str) -> None:
    modules = all_modules()
    graph = import_graph(modules)
    crossing = sorted(
        f"{name} -> {target}"
        for name, targets in graph.items() if name.split(".")[:2] == ["robokit", package]
        for target in targets
        if target.split(".")[1] in PERCEPTION + ("lidar",)
        and target.split(".")[1] not in ALLOWED[package] | {package}
    )
    assert crossing == []


def test_old_lidar_paths_import_the_new_modules_with_a_deprecation_warning() -> None:
    import robokit.detection.train
    import robokit.intact.train
    import robokit.pointcloud.corruptions.kitti_c

    with pytest.warns(DeprecationWarning, match="robokit.lidar.robust_train moved to robokit.intact.train"):
        from robokit.lidar import robust_train
    assert robust_train is robokit.intact.train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from robokit.lidar.corruptions.kitti_c import drop_points
        from robokit.lidar.detection.train import train_detector
    assert drop_points is robokit.pointcloud.corruptions.kitti_c.drop_points
    assert train_detector is robokit.detection.train.train_detector
    assert robokit.detection.train.__spec__.name == "robokit.detection.train"


def test_robokit_itself_uses_no_deprecated_lidar_path() -> None:
    modules = all_modules()
    old = sorted(
        f"{name}:{line} imports {target}"
        for name, path in modules.items() if name.split(".")[:2] != ["robokit", "lidar"]
        for target, _, line in imports_of(name, path, modules)
        if target == "robokit.lidar" or target.startswith("robokit.lidar.")
    )
    assert old == [], "imports of the deprecated robokit.lidar paths: " + "; ".join(old)
