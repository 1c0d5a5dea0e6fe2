"""Every module imports on its own, and the firmware's import graph holds no tool (issue 11.11).

One child interpreter imports each module of kiosk/ and device/ in turn,
starting each time from the interpreter's pristine ``sys.modules`` (every
module imported since is removed first), so a module that only works after
another one was imported fails here. A second child imports what ``kiosk run``
imports and lists any issuing, authority, centre or monitor module it pulled in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("kiosk.issuing", "kiosk.authority", "kiosk.centre", "kiosk.monitor")

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
for name in ("kiosk.door.kiosk", "kiosk.commands.run", "kiosk.trust.bundle", "kiosk.door.verify.verifier", "kiosk.door.decide.policy",
             "kiosk.door.verify.dcc", "kiosk.door.verify.declaration", "kiosk.door.verify.pccovid", "kiosk.door.verify.cccd"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # a module that exists but imports something missing is a failure
            raise
# What the kiosk's assembly builds at start-up (the plug-ins load lazily).
import kiosk.door.verify
kiosk.door.verify.load_all()
for extra in ("kiosk.door.assembly", "kiosk.door.flow", "kiosk.door.supervisor", "kiosk.door.stages"):
    try:
        importlib.import_module(extra)
    except ModuleNotFoundError as exc:
        if exc.name != extra:
            raise
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


def test_every_module_imports_on_its_own():
    names = _modules()
    assert "kiosk.door.verify.dcc" in names and "kiosk.issuing.dcc" in names and len(names) > 40
    failures = json.loads(_run(_EACH, json.dumps(names)))
    assert failures == {}


def test_the_issuing_code_and_the_dcc_reader_are_no_circle():
    # kiosk.issuing.dcc uses the reader's constants; the reader knows nothing of issuing.
    import re

    for path in (ROOT / "kiosk/door/verify").glob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+kiosk\.issuing", path.read_text(encoding="utf-8"), re.M), path
    assert not (ROOT / "kiosk/door/verify/dcc_issue.py").exists()
    assert not (ROOT / "kiosk/door/verify/keys.py").exists()


def test_kiosk_run_imports_no_tool():
    loaded = json.loads(_run(_FIRMWARE))
    assert "kiosk.door.kiosk" in loaded and "kiosk.trust.bundle" in loaded
    assert [m for m in loaded if m.startswith(TOOLS)] == []
