"""What every code format plug-in gives back, and the interface it fills in.

A format plug-in answers three questions about a payload string: is it mine
(``detects``), what does it say (parse), and can I trust it (verify). ``check``
does the last two and returns a :class:`CodeCheck`; it never raises for bad
input: a bad payload is a reject with a stable reason (see :mod:`kiosk.wire.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Protocol

from kiosk.trust.store import TrustStore
from kiosk.wire import reasons

# Largest QR code (version 40, level L, byte mode) holds 2953 bytes; alphanumeric 4296.
MAX_PAYLOAD_CHARS = 4296


@dataclass(frozen=True)
class Holder:
    """Personal data read from a code. It stays on the device (screen, optional visit log)."""

    name: str | None = None  # display order of the format's country (Vietnamese: family name first)
    birth_date: str | None = None  # ISO 8601 date where known
    id_number: str | None = None
    phone: str | None = None  # where the code carries one (PC-Covid)
    family_name: str | None = None  # where the format keeps the parts apart (EU DCC fn, gn)
    given_name: str | None = None
    # A signed health declaration names nobody: its issuer's reference for the person (pseudonymous,
    # unique per issuer) and that issuer's key id are all a tracer can follow back, through the issuer.
    subject_id: str | None = None
    subject_issuer: str | None = None  # hex key id of the declaration's issuer


@dataclass(frozen=True)
class CodeCheck:
    """A format plug-in's finding about one payload, before the venue policy.

    ``valid`` is technical validity (encoding, signature, validity period, key
    usage, schema). ``identity`` is a normalized key for the person or
    certificate (one person may carry two different QR strings); it is hashed
    with the device's key before anything stores it.
    """

    format: str
    valid: bool
    reason: str
    signed: bool = False
    identity: str | None = None
    holder: Holder | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    @classmethod
    def reject(cls, format: str, reason: str, detail: str = "", **kw: object) -> "CodeCheck":
        return cls(format=format, valid=False, reason=reason, detail=detail, **kw)


@dataclass(frozen=True)
class VerifyContext:
    """What a verifier needs besides the payload: the clock and the trusted keys."""

    now: datetime  # timezone-aware
    trust: TrustStore  # the snapshot of the keeper this check reads
    clock_skew_seconds: float = 300.0


class CodeFormat(Protocol):
    """One code format plug-in. Register it in :mod:`kiosk.door.verify` by its ``name``."""

    name: str

    def detects(self, payload: str) -> bool:
        """Cheap test: does this payload look like this format?"""

    def check(self, payload: str, ctx: VerifyContext) -> CodeCheck:
        """Parse and verify; never raises for bad input."""


def unknown(payload: str) -> CodeCheck:
    """The check for a payload no plug-in claims."""
    return CodeCheck.reject("unknown", reasons.UNKNOWN_FORMAT, "no format recognises this code")
