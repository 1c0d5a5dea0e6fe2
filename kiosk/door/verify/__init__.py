"""Code format plug-ins, registered by name (like Frigate's detectors).

Adding a format touches one file: write a module with a class that fills in
:class:`kiosk.door.verify.base.CodeFormat` and add it to ``_FORMATS`` below. The
order matters only for detection: the first plug-in that claims a payload
checks it.
"""

from __future__ import annotations

import importlib

from kiosk.wire import formats
from kiosk.door.verify.base import CodeCheck, CodeFormat, Holder, VerifyContext, unknown

# name -> "module:Class"; imported lazily so start-up stays fast.
# The names are the wire's (kiosk.wire.formats): events carry them and the centre counts by them.
_FORMATS: dict[str, str] = {
    formats.EU_DCC: "kiosk.door.verify.dcc:EuDcc",
    formats.HEALTH_DECLARATION: "kiosk.door.verify.declaration:HealthDeclaration",
    formats.PC_COVID: "kiosk.door.verify.pccovid:PcCovid",
    formats.CCCD: "kiosk.door.verify.cccd:Cccd",
}


def load(name: str) -> CodeFormat:
    """Instantiate the plug-in registered as ``name``."""
    module, _, cls = _FORMATS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def load_all(names: list[str] | None = None) -> list[CodeFormat]:
    """Every registered plug-in (or the ones named), in detection order."""
    return [load(n) for n in (names or _FORMATS)]


__all__ = ["CodeCheck", "CodeFormat", "Holder", "VerifyContext", "load", "load_all", "unknown"]
