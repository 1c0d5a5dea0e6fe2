"""The house's import rule (docs/architecture.md, "Who may import what"), and every module importing alone.

* import-linter's contracts in pyproject.toml (``[tool.importlinter]``): the wings are layered
  (door over config, trust, wire, secrets, errors), the door's stages are layered in the order
  a visitor's code takes them, the firmware imports no tool, the hardware layer nothing of the
  kiosk, the centre only the wire and trust, the tools not each other, and no circle anywhere.
  One test runs ``lint-imports``; another shows a broken rule is caught.
* What import-linter cannot say, checked here: no module imports a private name of another
  package, the door's signatures name no ``Any``, no two modules import each other round a
  loop (imports inside functions included) and what ``kiosk run`` really loads at start-up.
* One child interpreter imports each module of kiosk/ and device/ in turn, starting each time
  from the interpreter's pristine ``sys.modules``, so a module that only works after another
  one was imported fails here.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import layout_report  # noqa: E402

TOOLS = ("kiosk.issuing", "kiosk.authority", "kiosk.centre", "kiosk.ops", "kiosk.testing", "kiosk.doctor")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

_EACH = r"""
import importlib, json, sys, traceback
pristine = set(sys.modules)
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m not in pristine and m.split(".")[0] in ("kiosk", "device")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
print(json.dumps(failures))
"""

_FIRMWARE = r"""
import importlib, json, sys
for name in ("kiosk.commands.run", "kiosk.door.assembly", "kiosk.door.kiosk", "kiosk.trust.bundle",
             "kiosk.door.verify.verifier", "kiosk.door.decide.policy", "kiosk.door.verify.dcc",
             "kiosk.door.verify.declaration", "kiosk.door.verify.pccovid", "kiosk.door.verify.cccd"):
    importlib.import_module(name)
# What the kiosk's assembly builds at start-up (the plug-ins load lazily).
import kiosk.door.verify
kiosk.door.verify.load_all()
print(json.dumps(sorted(sys.modules)))
"""


def _modules() -> list[str]:
    names = []
    for package in ("kiosk", "device"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts[-1] == "__main__":
                continue
            names.append(".".join(parts))
    return names


def _run(code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                              "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
                                              "GPIOZERO_PIN_FACTORY": "mock"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_every_module_imports_on_its_own():
    names = _modules()
    assert "kiosk.door.verify.dcc" in names and "kiosk.issuing.dcc" in names and len(names) > 40
    failures = json.loads(_run(_EACH, json.dumps(names)))
    assert failures == {}


def test_the_house_keeps_its_import_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in ("wings are layered", "door's stages", "firmware", "hardware layer", "centre speaks the wire",
                     "centre's own flow", "tools are independent", "No import circle"):
        assert contract in result.stdout
    assert "BROKEN" not in result.stdout


def test_a_broken_rule_is_caught(tmp_path):
    """The contracts bite: the door importing the centre, the wire importing the door, or the centre's
    store reaching up to its statistics, breaks them."""
    for item in ("kiosk", "device", "pyproject.toml"):
        src = ROOT / item
        (shutil.copytree(src, tmp_path / item, ignore=shutil.ignore_patterns("__pycache__", "data"))
         if src.is_dir() else shutil.copy(src, tmp_path / item))
    flow = tmp_path / "kiosk/door/flow.py"
    flow.write_text(flow.read_text() + "\n\ndef _peek():\n    from kiosk.centre import queries  # noqa\n")
    topics = tmp_path / "kiosk/wire/topics.py"
    topics.write_text(topics.read_text() + "\n\ndef _peek():\n    from kiosk.door import flow  # noqa\n")
    store = tmp_path / "kiosk/centre/store.py"
    store.write_text(store.read_text() + "\n\ndef _peek():\n    from kiosk.centre import queries  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert "kiosk.door.flow -> kiosk.centre.queries" in broken
    assert "kiosk.wire.topics -> kiosk.door.flow" in broken
    assert "kiosk.centre.store -> kiosk.centre.queries" in broken


def test_the_issuing_code_and_the_dcc_reader_are_no_circle():
    # kiosk.issuing.dcc uses the reader's constants; the reader knows nothing of issuing.
    import re

    for path in (ROOT / "kiosk/door/verify").glob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+kiosk\.issuing", path.read_text(encoding="utf-8"), re.M), path


def test_kiosk_run_imports_no_tool():
    loaded = json.loads(_run(_FIRMWARE))
    assert "kiosk.door.kiosk" in loaded and "kiosk.trust.bundle" in loaded
    assert [m for m in loaded if m.startswith(TOOLS)] == []
    assert [m for m in loaded if m.startswith("kiosk.commands.")] == ["kiosk.commands.run"]


def test_no_module_imports_a_private_name_of_another_package():
    """``from kiosk.x import _name`` only inside kiosk.x's own package (issue 22: tools reached into private names)."""
    reaches = []
    for name in _modules():
        path = ROOT / (name.replace(".", "/") + ("/__init__.py" if (ROOT / name.replace(".", "/")).is_dir() else ".py"))
        package = name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("kiosk", "device"):
                owner = node.module if (ROOT / node.module.replace(".", "/")).is_dir() else node.module.rsplit(".", 1)[0]
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and not (package == owner or package.startswith(owner + ".")):
                        reaches.append(f"{name}: from {node.module} import {alias.name}")
    assert reaches == []


def test_the_door_signatures_name_real_types():
    """No ``Any`` in a parameter or return annotation of kiosk/door/ (scripts/layout_report.py counts them)."""
    graph = layout_report.imports(ROOT)
    door = layout_report.door_modules(graph)
    assert len(door) > 40 and all(m.startswith("kiosk.door") for m in door)
    assert layout_report.any_in_signatures(ROOT, door) == []


def test_no_module_circle_and_no_arrow_against_the_flow():
    """Module by module, lazy imports included: no two modules import each other round a loop, and no import
    runs from a lower rank of the house to a higher one (scripts/layout_report.py's table)."""
    graph = layout_report.imports(ROOT)
    assert layout_report.circles(graph) == []
    assert layout_report.back_arrows(graph) == []
    assert layout_report.forbidden(graph, layout_report.door_modules(graph)) == []


def _module_of(dotted: str) -> str | None:
    """``dotted`` when it names a module or package of the house, else None."""
    base = ROOT / dotted.replace(".", "/")
    return dotted if base.is_dir() or base.with_suffix(".py").is_file() else None


def _private_reaches(path: Path, package: str | None) -> list[str]:
    """Where ``path`` reaches a private name of a house module outside ``package``: imported
    (``from kiosk.x import _y``) or read off the module (``from kiosk import x; x._y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    bound: dict[str, str] = {}  # a local name -> the house module it stands for
    reaches = []

    def foreign(module: str) -> bool:  # a private name is private to the package that holds its module
        owner = module if (ROOT / module.replace(".", "/")).is_dir() else module.rsplit(".", 1)[0]
        return package is None or not (package == owner or package.startswith(owner + "."))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("kiosk", "device"):
                    local = alias.asname or alias.name.split(".")[0]
                    bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("kiosk", "device"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and foreign(node.module):
                    reaches.append(f"{shown}:{node.lineno}: from {node.module} import {alias.name}")
                sub = _module_of(f"{node.module}.{alias.name}")
                if sub:
                    bound[alias.asname or alias.name] = sub
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                owner = _module_of(".".join([bound[value.id], *chain]))
                if owner and foreign(owner):
                    reaches.append(f"{shown}:{node.lineno}: {owner}.{node.attr}")
    return reaches


def test_no_tool_reaches_a_private_name_of_the_house():
    """The scripts and the kiosk's own modules use the public names of each other's modules, whether
    imported or read off the module (issue 22: bench_centre read ``signing._unb64``)."""
    reaches = []
    for path in sorted((ROOT / "scripts").glob("*.py")):
        reaches += _private_reaches(path, None)
    for name in _modules():
        path = ROOT / (name.replace(".", "/") + ("/__init__.py" if (ROOT / name.replace(".", "/")).is_dir() else ".py"))
        reaches += _private_reaches(path, name.rsplit(".", 1)[0])
    assert reaches == []


def test_a_reach_into_a_private_name_is_caught(tmp_path):
    tool = tmp_path / "tool.py"
    tool.write_text("from kiosk.wire import signing\nimport kiosk.door.verify.dcc as dcc\n"
                    "from kiosk.commands.screenshot import _Located\n"
                    "signing._unb64('x')\ndcc._jsonable({})\nsigning.unb64('x')\n")
    found = _private_reaches(tool, None)
    assert [f.split(": ", 1)[1] for f in found] == ["from kiosk.commands.screenshot import _Located",
                                                    "kiosk.wire.signing._unb64", "kiosk.door.verify.dcc._jsonable"]
