"""The package's three floors: commands on top, the lesson in the middle, the machinery at the bottom. Every import
points down (read from the source, lazy imports inside functions included), the lesson has no circle, and the
notebooks import nothing from the machinery or the commands but setup()."""

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"commands": 3, "lesson": 2, "machinery": 1, "root": 0}
# The machinery may know the recipe's settings type, which it reads and writes (TrainConfig, Settled).
SETTINGS_TYPE = "helpers.config"


def floor(module: str) -> str:
    parts = module.split(".")
    if module in ("helpers", "helpers.__main__") or parts[:2] == ["helpers", "commands"]:
        return "root" if module == "helpers" else "commands"
    return "machinery" if parts[:2] == ["helpers", "machinery"] else "lesson"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str) -> set[str]:
    """The helpers modules a source imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            for alias in node.names:  # `from helpers.machinery import setup`: setup may be a module or a name
                names.add(node.module if node.module != "helpers" else f"helpers.{alias.name}")
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("helpers"))
    return {name if name in MODULES else name.rsplit(".", 1)[0] for name in names}


MODULES = {module_name(path): path for path in (ROOT / "helpers").rglob("*.py")}
GRAPH = {name: imported(path.read_text()) - {name} for name, path in MODULES.items()}


def upward_imports(graph) -> list[str]:
    wrong = []
    for importer, targets in graph.items():
        for target in targets:
            allowed = target == SETTINGS_TYPE and floor(importer) == "machinery"
            if FLOORS[floor(target)] > FLOORS[floor(importer)] and not allowed:
                wrong.append(f"{importer} ({floor(importer)}) imports {target} ({floor(target)})")
    return sorted(wrong)


def circles(graph) -> list[list[str]]:
    """Every module that reaches itself, with the path."""
    found = []
    for start in graph:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for target in graph.get(node, ()):
                if target == start:
                    found.append(path + [start])
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
    return found


def test_every_import_points_down_a_floor_or_stays_on_it():
    assert {floor(name) for name in MODULES} == set(FLOORS)
    assert upward_imports(GRAPH) == []


def test_an_upward_import_or_a_circle_is_caught():
    planted = {**GRAPH, "helpers.model": GRAPH["helpers.model"] | {"helpers.machinery.cpu_dropout"}}
    assert upward_imports(planted) == []  # down: fine
    planted["helpers.machinery.files"] = {"helpers.training"}
    planted["helpers.training"] = GRAPH["helpers.training"] | {"helpers.commands.cli"}
    assert upward_imports(planted) == [
        "helpers.machinery.files (machinery) imports helpers.training (lesson)",
        "helpers.training (lesson) imports helpers.commands.cli (commands)",
    ]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) != []


def test_no_module_reaches_itself():
    assert circles(GRAPH) == []


def test_notebooks_import_the_lesson_and_setup_only():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        source = "\n".join(  # a shell line (!git clone) is not Python: `pass` in its place
            line.split("!")[0] + "pass" if line.lstrip().startswith("!") else line
            for cell in cells
            if cell["cell_type"] == "code"
            for line in "".join(cell["source"]).splitlines()
        )
        for module in imported(source):
            assert floor(module) == "lesson" or module == "helpers.commands", f"{path.name} imports {module}"
        assert "from helpers.commands import setup; setup()" in source
