#!/usr/bin/env python3
"""What a newcomer would count in the house's layout: ``Any`` in the door's signatures, import circles, back-arrows.

    .venv/bin/python scripts/layout_report.py [ROOT] [--list]

ROOT is a checkout (default: this one); ``--list`` names every finding. The
counts are read from the source with :mod:`ast`, nothing is imported, so an
old checkout can be measured the same way (issue 22 reports before and after).

* ``Any`` in signatures: parameter and return annotations that name ``Any``, in
  the door (``kiosk/door/``; in an older layout, the modules that became it).
* Circles: groups of modules that import each other, directly or round a loop,
  counting imports inside functions too (they still run, only later).
* Back-arrows: imports that run against the house's order, foundation (errors,
  secrets, device/) < wire/ < trust/ < config/ < the door's stages in the order a
  visitor's code takes (decode < verify < decide < record < show < publish <
  remote < the seams < intake, control, systemd < flow < health, liveness < supervisor < the kiosk < its
  assembly) < the tools. An
  arrow from a lower rank to a higher one is a back-arrow.
* Forbidden: the centre importing the door, or the door importing a tool.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

# (prefix, rank): the longest matching prefix wins. Old names (before issue 22) sit beside
# their new homes so that both layouts are measured by one table.
RANKS: list[tuple[str, float]] = [
    ("kiosk", 0), ("kiosk.errors", 0), ("kiosk.secrets", 0), ("device", 0), ("kiosk.clock", 0),
    ("kiosk.wire", 1), ("kiosk.signing", 1), ("kiosk.reasons", 1), ("kiosk.publish.topics", 1),
    ("kiosk.publish.connection", 1), ("kiosk.ops.registry", 1),
    ("kiosk.trust", 2), ("kiosk.trust_bundle", 2), ("kiosk.pseudonym", 2),
    ("kiosk.config", 3), ("kiosk.preflight", 3),
    ("kiosk.scan", 4.1), ("kiosk.door.decode", 4.1),
    ("kiosk.codes", 4.2), ("kiosk.verify", 4.2), ("kiosk.door.verify", 4.2),
    ("kiosk.checkin", 4.3), ("kiosk.policy", 4.3), ("kiosk.door.decide", 4.3),
    ("kiosk.ledger", 4.4), ("kiosk.door.record", 4.4),
    ("kiosk.screen", 4.5), ("kiosk.door.show", 4.5),
    ("kiosk.publish", 4.6), ("kiosk.door.publish", 4.6),
    ("kiosk.command_gate", 4.7), ("kiosk.remote", 4.7), ("kiosk.door.remote", 4.7), ("kiosk.tracing", 4.7),
    ("kiosk.door.tracing", 4.7), ("kiosk.wire.trace", 1),
    ("kiosk.stages", 4.80), ("kiosk.door.stages", 4.80),
    ("kiosk.intake", 4.81), ("kiosk.control", 4.81), ("kiosk.watchdog", 4.81), ("kiosk.door.intake", 4.81),
    ("kiosk.door.control", 4.81), ("kiosk.door.systemd", 4.81),
    ("kiosk.flow", 4.82), ("kiosk.door.flow", 4.82), ("kiosk.door.health", 4.821), ("kiosk.door.liveness", 4.821),
    ("kiosk.supervisor", 4.822), ("kiosk.door.supervisor", 4.822),
    ("kiosk.pipeline", 4.83), ("kiosk.door.kiosk", 4.83),
    ("kiosk.assembly", 4.84), ("kiosk.door.assembly", 4.84),
    ("kiosk.door", 4.84),
    *((f"kiosk.{tool}", 5) for tool in ("centre", "authority", "issuing", "ops", "commands", "cli", "__main__",
                                         "doctor", "demo", "poster", "monitor", "testing")),
]
DOOR_OLD = ("kiosk.scan", "kiosk.codes", "kiosk.verify", "kiosk.checkin", "kiosk.policy", "kiosk.ledger",
            "kiosk.screen", "kiosk.publish", "kiosk.command_gate", "kiosk.remote", "kiosk.stages", "kiosk.intake",
            "kiosk.control", "kiosk.watchdog", "kiosk.flow", "kiosk.supervisor", "kiosk.pipeline", "kiosk.assembly")
TOOLS = ("kiosk.centre", "kiosk.authority", "kiosk.issuing", "kiosk.ops", "kiosk.commands", "kiosk.cli",
         "kiosk.doctor", "kiosk.demo", "kiosk.poster", "kiosk.monitor", "kiosk.testing")


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def rank(name: str) -> float:
    best = max((p for p, _ in RANKS if _under(name, [p])), key=len)
    return dict(RANKS)[best]


def modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for kiosk/ and device/."""
    found = {}
    for package in ("kiosk", "device"):
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts.pop()
            found[".".join(parts)] = (path, is_pkg)
    return found


def imports(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (at the top or inside functions)."""
    mods = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: None if is_pkg else -1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target not in mods and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in mods and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def back_arrows(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets if rank(a) < rank(b))


# The one import of the door the centre makes on purpose (pyproject.toml's centre contract names it too): an
# inspector's photo of a posted code is read with the kiosk's own decoder cascade.
CENTRE_USES_DOOR = {("kiosk.centre.photo_check", "kiosk.door.decode.cascade")}


def forbidden(graph: dict[str, set[str]], door: list[str]) -> list[tuple[str, str]]:
    out = []
    for a, targets in graph.items():
        for b in targets:
            if (a, b) in CENTRE_USES_DOOR:
                continue
            if _under(a, ["kiosk.centre"]) and (b in door):
                out.append((a, b))
            elif a in door and _under(b, TOOLS):
                out.append((a, b))
    return sorted(out)


def door_modules(mods) -> list[str]:
    new = [m for m in mods if _under(m, ["kiosk.door"])]
    return new or [m for m in mods if _under(m, DOOR_OLD)]


def any_in_signatures(root: Path, door: list[str]) -> list[str]:
    """``file:line function`` for every parameter or return annotation that names ``Any``."""
    mods = modules(root)
    found = []
    for name in door:
        path = mods[name][0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            annotations = [p.annotation for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                           if p is not None and p.annotation is not None]
            if node.returns is not None:
                annotations.append(node.returns)
            for ann in annotations:
                text = ast.unparse(ann)
                if any(isinstance(n, ast.Name) and n.id == "Any" or isinstance(n, ast.Attribute) and n.attr == "Any"
                       for n in ast.walk(ann)) or "Any" in text.replace("'", " ").split():
                    found.append(f"{path.relative_to(root)}:{ann.lineno} {node.name}: {text}")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--list", action="store_true", help="name every finding")
    args = ap.parse_args()
    root = Path(args.root)
    graph = imports(root)
    door = door_modules(graph)
    rows = [("Any in door signatures", any_in_signatures(root, door)),
            ("import circles", [" <-> ".join(c) for c in circles(graph)]),
            ("back-arrows", [f"{a} -> {b}" for a, b in back_arrows(graph)]),
            ("forbidden imports", [f"{a} -> {b}" for a, b in forbidden(graph, door)])]
    print(f"{root}: {len(door)} door modules, {len(graph)} modules in all")
    for label, items in rows:
        print(f"{label:24} {len(items)}")
        if args.list:
            for item in items:
                print(f"    {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
