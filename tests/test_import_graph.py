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
                     "tools are independent", "No import circle"):
        assert contract in result.stdout
    assert "BROKEN" not in result.stdout


def test_a_broken_rule_is_caught(tmp_path):
    """The contracts bite: the door importing the centre, or the wire importing the door, breaks them."""
    for item in ("kiosk", "device", "pyproject.toml"):
        src = ROOT / item
        (shutil.copytree(src, tmp_path / item, ignore=shutil.ignore_patterns("__pycache__", "data"))
         if src.is_dir() else shutil.copy(src, tmp_path / item))
    flow = tmp_path / "kiosk/door/flow.py"
    flow.write_text(flow.read_text() + "\n\ndef _peek():\n    from kiosk.centre import queries  # noqa\n")
    topics = tmp_path / "kiosk/wire/topics.py"
    topics.write_text(topics.read_text() + "\n\ndef _peek():\n    from kiosk.door import flow  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert "kiosk.door.flow -> kiosk.centre.queries" in broken
    assert "kiosk.wire.topics -> kiosk.door.flow" in broken


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
