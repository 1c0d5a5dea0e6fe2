"""The kiosk's code against the Raspberry Pi OS stacks: Bookworm (Debian 12) and Trixie (Debian 13).

The suite runs twice (scripts/test): on the development stack (numpy 2, OpenCV 5,
pygame 2.6) and in .venv-pi, pinned to Bookworm's versions (numpy 1.24, OpenCV 4.6,
pygame 2.1.3); then a focused pass (this file, decode, verify, screen, packaging) runs
in .venv-trixie, pinned to Trixie's (Python 3.13, numpy 2.2, OpenCV 4.10, pygame 2.6).
The tests here make those runs worth something:

- every ``cv2.X``, ``numpy.X`` and ``pygame.X`` the code names must exist in the
  installed library, unless the use is guarded (``hasattr``/``getattr`` test, or a
  ``try`` block), so a newer API is caught even on a code path no test reaches;
- every module imports with numpy, OpenCV and pygame absent (they are imported
  lazily), and the CLI, config check and verification work without them;
- the pinned environment really holds the pinned versions.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("cv2", "numpy", "pygame")
SOURCE_DIRS = ("kiosk", "device", "tests")

# Raspberry Pi OS Bookworm's apt versions, and the PyPI releases standing in for them.
BOOKWORM = {
    "numpy": "1.24.2",
    "opencv-python-headless": "4.6.0.66",  # python3-opencv 4.6.0
    "pygame": "2.1.3",                     # python3-pygame 2.1.2 has no Python 3.11 wheel
    "pyzbar": "0.1.9",
}
# Raspberry Pi OS Trixie's apt versions (python3 3.13.5, python3-numpy 1:2.2.4, python3-opencv 4.10.0,
# python3-pygame 2.6.1; no python3-pyzbar: pip's 0.1.9 over libzbar0t64), and their PyPI stand-ins.
TRIXIE = {
    "numpy": "2.2.4",
    "opencv-python-headless": "4.10.0.84",  # python3-opencv 4.10.0
    "pygame": "2.6.1",
    "pyzbar": "0.1.9",
}


# --- the static audit ----------------------------------------------------------

def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _mentions_feature_test(node: ast.AST, flags: frozenset[str] = frozenset()) -> bool:
    """True when ``node`` tests for a feature: hasattr/getattr, a version, a skipif, or a flag set from one."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in flags or isinstance(sub, ast.Attribute) and sub.attr in flags:
            return True
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in ("hasattr", "getattr"):
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in ("__version__", "version", "vernum", "skipif", "importorskip"):
            return True
        if isinstance(sub, ast.Name) and sub.id.isupper() and ("VERSION" in sub.id or sub.id.startswith("HAS_")):
            return True
    return False


def _feature_flags(tree: ast.AST) -> frozenset[str]:
    """Names (variables, attributes) assigned from a feature test, like ``has_aruco = hasattr(cv2, ...)``."""
    flags: set[str] = set()
    assigns = [n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None]
    while True:
        before = len(flags)
        for a in assigns:
            if _mentions_feature_test(a.value, frozenset(flags)):
                for target in (a.targets if isinstance(a, ast.Assign) else [a.target]):
                    for t in ast.walk(target):
                        if isinstance(t, ast.Name):
                            flags.add(t.id)
                        elif isinstance(t, ast.Attribute):
                            flags.add(t.attr)
        if len(flags) == before:
            return frozenset(flags)


def _catches_missing_api(handler: ast.ExceptHandler) -> bool:
    """An ``except`` that catches what a missing name or module raises."""
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = {t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else "" for t in types}
    return bool(names & {"AttributeError", "ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST], flags: frozenset[str] = frozenset()) -> bool:
    """True when a use of ``node`` only runs where the feature was checked for or its absence is caught."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body and any(map(_catches_missing_api, parent.handlers)):
            return True
        if isinstance(parent, (ast.If, ast.IfExp, ast.While)) and _mentions_feature_test(parent.test, flags):
            return True
        if isinstance(parent, ast.BoolOp) and any(_mentions_feature_test(v, flags) for v in parent.values if v is not child):
            return True
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and any(
                _mentions_feature_test(d, flags) for d in parent.decorator_list):
            return True
        child, parent = parent, parents.get(parent)
    return False


def _dotted(node: ast.Attribute) -> tuple[str, list[str]] | None:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, attrs[::-1]
    return None


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` (``cv2.QRCodeDetector``) names something in the installed library."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:  # a submodule not imported by its package (pygame.freetype, numpy.typing)
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                return False
    return True


def heavy_api_uses(path: Path) -> list[tuple[int, str, bool]]:
    """(line, dotted name, guarded) for each cv2/numpy/pygame name used in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = _parents(tree)
    flags = _feature_flags(tree)
    aliases: dict[str, str] = {}  # local name -> module it stands for
    uses: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in HEAVY:
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in HEAVY:
            for a in node.names:
                if a.name == "*":
                    continue
                name = f"{node.module}.{a.name}"
                uses.append((node.lineno, name, _guarded(node, parents, flags)))
                # Only modules are followed further: other imported names may be shadowed by variables.
                try:
                    is_module = _resolves(name) and isinstance(_lookup(name), type(os))
                except ImportError:
                    is_module = False
                if is_module:
                    aliases[a.asname or a.name] = name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(parents.get(node), ast.Attribute):
            found = _dotted(node)
            if found and found[0] in aliases:
                uses.append((node.lineno, ".".join([aliases[found[0]], *found[1]]), _guarded(node, parents, flags)))
    return uses


def _lookup(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        obj = getattr(obj, part, None) or importlib.import_module(".".join(parts[: i + 1]))
    return obj


def _python_files() -> list[Path]:
    files = []
    for d in SOURCE_DIRS:
        files += sorted((ROOT / d).rglob("*.py"))
    return files


def test_audit_sees_a_missing_api(tmp_path):
    """The audit itself: an unguarded unknown name is caught, a guarded one is not."""
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        import numpy as np

        def f():
            import cv2 as cv
            a = np.no_such_function_anywhere(3)
            if hasattr(cv, "NoSuchDetector"):
                d = cv.NoSuchDetector()
            has_new = hasattr(cv, "NewerDetector")
            self_aruco = has_new and True
            d2 = cv.NewerDetector() if self_aruco else cv.QRCodeDetector()
            try:
                b = np.also_missing
            except AttributeError:
                b = None
            try:
                c = np.missing_but_wrong_except
            except ValueError:
                c = None
            return np.zeros(3), cv.QRCodeDetector
    """))
    uses = {(name, guarded) for _, name, guarded in heavy_api_uses(sample)}
    assert ("numpy.no_such_function_anywhere", False) in uses
    assert ("cv2.NoSuchDetector", True) in uses
    assert ("numpy.also_missing", True) in uses
    assert ("numpy.missing_but_wrong_except", False) in uses
    assert ("cv2.NewerDetector", True) in uses  # behind a flag set from hasattr
    assert ("numpy.zeros", False) in uses and ("cv2.QRCodeDetector", False) in uses
    assert not _resolves("numpy.no_such_function_anywhere")
    assert _resolves("numpy.zeros") and _resolves("cv2.QRCodeDetector")


def test_code_uses_only_apis_of_the_installed_stack():
    """No unguarded cv2/numpy/pygame name the installed versions lack (run in .venv-pi: Bookworm's)."""
    for module in HEAVY:
        importlib.import_module(module)  # the suite's environments have all three
    missing = []
    for path in _python_files():
        if path.name == Path(__file__).name:
            continue
        for line, name, guarded in heavy_api_uses(path):
            if not guarded and not _resolves(name):
                missing.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    versions = ", ".join(f"{m} {_version(m)}" for m in HEAVY)
    assert not missing, (
        f"names missing from the installed stack ({versions}); check for them and fall back:\n  "
        + "\n  ".join(sorted(set(missing))))


def _version(module: str) -> str:
    mod = importlib.import_module(module)
    return getattr(mod, "__version__", None) or str(getattr(getattr(mod, "version", None), "ver", "?"))


# --- the stages that need no image or screen ----------------------------------------

# Every module must import with numpy, OpenCV and pygame absent (they are imported
# where used), so that `kiosk verify`, `kiosk config check`, the publisher and every
# command's --help work on a base install. The exceptions exist only to make images
# and are never imported by the kiosk itself.
NEEDS_HEAVY_AT_IMPORT = {
    "kiosk.testing.screenframes",  # synthetic camera frames for benchmarks and tests
}

BLOCKER = """
import importlib.abc, sys
class _NotOnABaseInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "cv2", "pygame", "picamera2"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
sys.meta_path.insert(0, _NotOnABaseInstall())
"""


def _light_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "kiosk").rglob("*.py")) + sorted((ROOT / "device").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":  # runs the CLI when imported
            continue
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if name not in NEEDS_HEAVY_AT_IMPORT:
            names.append(name)
    return names


def _run_blocked(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def test_light_modules_import_without_numpy_opencv_pygame():
    modules = _light_modules()
    assert {"kiosk.config", "kiosk.door.verify.verifier", "kiosk.cli"} <= set(modules)
    proc = _run_blocked("""
        import importlib, sys, traceback
        failed = []
        for name in sys.argv[1:]:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """, *modules)
    assert proc.returncode == 0, f"these need numpy/OpenCV/pygame at import time:\n{proc.stdout}{proc.stderr}"


def test_cli_and_config_check_work_without_numpy_opencv_pygame(tmp_path):
    cli = "import sys\nfrom kiosk.cli import main\nsys.exit(main(sys.argv[1:]))"
    version = _run_blocked(cli, "--version")
    assert version.returncode == 0 and version.stdout.startswith("kiosk "), version.stdout + version.stderr
    example = _run_blocked(cli, "config", "example")
    assert example.returncode == 0, example.stdout + example.stderr
    (tmp_path / "kiosk.toml").write_text(example.stdout, encoding="utf-8")
    # --portable: checked for the kiosk it is made for, not this machine (which lacks picamera2 and pygame).
    check = _run_blocked(cli, "config", "check", "--portable", str(tmp_path / "kiosk.toml"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok" in check.stdout
    here = _run_blocked(cli, "config", "check", str(tmp_path / "kiosk.toml"))
    assert here.returncode == 2 and "[camera] source: picamera2 is not installed" in here.stderr
    assert "Traceback" not in here.stderr


def _valid_dcc_case(testdata: Path) -> dict:
    known = (testdata / "dcc" / "known_issues.csv")
    skip = known.read_text(encoding="utf-8") if known.exists() else ""
    for path in sorted((testdata / "dcc" / "common" / "2DCode" / "raw").glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        expected = case.get("EXPECTEDRESULTS", {})
        if (path.stem not in skip and expected and all(expected.values()) and "EXPECTEDVERIFY" in expected
                and case.get("TESTCTX", {}).get("CERTIFICATE")):
            return case
    pytest.fail("no valid DCC case with a certificate under dcc/common")


def test_dcc_verifies_without_numpy_opencv_pygame(testdata, tmp_path):
    """Verifying a visitor's certificate needs only the base install."""
    case = _valid_dcc_case(testdata)
    (tmp_path / "case.json").write_text(json.dumps({
        "payload": case["PREFIX"],
        "cert": case["TESTCTX"]["CERTIFICATE"],
        "at": case["TESTCTX"]["VALIDATIONCLOCK"],
    }))
    proc = _run_blocked("""
        import base64, json, sys
        from datetime import datetime
        from kiosk.trust.store import TrustStore
        from kiosk.door.verify import load
        from kiosk.door.verify.verifier import Verifier
        case = json.load(open(sys.argv[1]))
        trust = TrustStore.from_certificates([base64.b64decode(case["cert"])])
        at = datetime.fromisoformat(case["at"].replace("Z", "+00:00"))
        check = Verifier(trust, formats=[load("eu-dcc")]).check(case["payload"], at=at)
        print(json.dumps({"valid": check.valid, "signed": check.signed, "reason": check.reason,
                          "format": check.format}))
    """, str(tmp_path / "case.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["valid"] and result["signed"], result


# --- the pinned environment ------------------------------------------------------------

def _pins(name: str = "pi-stack-requirements.txt") -> dict[str, str]:
    pins = {}
    for line in (ROOT / "scripts" / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_pin_files_hold_bookworms_and_trixies_versions():
    assert _pins() == BOOKWORM
    assert _pins("pi-stack-trixie-requirements.txt") == TRIXIE


IN_PI_VENV = Path(sys.prefix).name == ".venv-pi"


@pytest.mark.skipif(not IN_PI_VENV, reason="only in the pinned environment .venv-pi (scripts/test's second run)")
def test_pinned_environment_holds_bookworms_versions():
    installed = {name: importlib.metadata.version(name) for name in BOOKWORM}
    assert installed == BOOKWORM
    assert sys.version_info[:2] == (3, 11), "Raspberry Pi OS Bookworm runs Python 3.11"
    import cv2
    import numpy
    import pygame

    assert cv2.__version__.startswith("4.6.") and numpy.__version__ == "1.24.2"
    assert pygame.version.ver.startswith("2.1.")


IN_TRIXIE_VENV = Path(sys.prefix).name == ".venv-trixie"


@pytest.mark.skipif(not IN_TRIXIE_VENV, reason="only in the pinned environment .venv-trixie (scripts/test's third pass)")
def test_pinned_environment_holds_trixies_versions():
    installed = {name: importlib.metadata.version(name) for name in TRIXIE}
    assert installed == TRIXIE
    # scripts/test makes .venv-trixie with a Python 3.13 when it finds one (pyenv's here); without one it says
    # so and sets KIOSK_TRIXIE_HOST_PYTHON, and the pins run on the host's Python instead.
    if not os.environ.get("KIOSK_TRIXIE_HOST_PYTHON"):
        assert sys.version_info[:2] == (3, 13), "Raspberry Pi OS Trixie runs Python 3.13"
    import cv2
    import numpy
    import pygame

    assert cv2.__version__.startswith("4.10.") and numpy.__version__.startswith("2.2.")
    assert pygame.version.ver.startswith("2.6.")
