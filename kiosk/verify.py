"""Verify stage: payload string -> :class:`CodeCheck`, whatever the payload holds.

This is the one place that guards against plug-in bugs: any exception a
plug-in lets escape becomes a ``malformed`` reject, logged once, so a hostile
code can never stop the kiosk.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from kiosk import reasons
from kiosk.codes import CodeCheck, CodeFormat, VerifyContext, load_all, unknown
from kiosk.codes.base import MAX_PAYLOAD_CHARS

log = logging.getLogger(__name__)


class Verifier:
    """Runs the first plug-in that claims a payload."""

    def __init__(self, trust, formats: list[CodeFormat] | None = None, clock_skew_seconds: float = 300.0):
        self.trust = trust
        self.formats = formats if formats is not None else load_all()
        self.clock_skew_seconds = clock_skew_seconds

    def check(self, payload: str, at: datetime | None = None) -> CodeCheck:
        """Detect the format of ``payload`` and verify it at time ``at`` (default: now)."""
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)  # a naive clock is UTC, never compared naive-to-aware
        ctx = VerifyContext(now=at or datetime.now(timezone.utc), trust=self.trust,
                            clock_skew_seconds=self.clock_skew_seconds)
        if len(payload) > MAX_PAYLOAD_CHARS:
            return CodeCheck.reject("unknown", reasons.MALFORMED, "payload longer than any QR code holds")
        for fmt in self.formats:
            try:
                if not fmt.detects(payload):
                    continue
                return fmt.check(payload, ctx)
            except Exception as exc:  # a plug-in bug must not become a crash at the door
                log.warning("%s plug-in raised %s on a payload; rejected as malformed", fmt.name, type(exc).__name__)
                return CodeCheck.reject(fmt.name, reasons.MALFORMED, f"{type(exc).__name__}")
        return unknown(payload)
