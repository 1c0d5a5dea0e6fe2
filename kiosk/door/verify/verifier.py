"""Verify stage: payload string -> :class:`CodeCheck`, whatever the payload holds.

This is the one place that guards against plug-in bugs: any exception a
plug-in lets escape becomes a ``malformed`` reject, logged once, so a hostile
code can never stop the kiosk.

It also applies what the trust data says about a code after its plug-in has
judged it, in a fixed order: a signed code checked against stale trust data
is ``trust-stale`` (its keys might have been withdrawn since), then a code
whose hash is on the trust bundle's revocation list is ``revoked``. Each check
reads one snapshot of the trust data (``trust.current()``), so a bundle applied
meanwhile never mixes with the one a check started with.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

from kiosk.wire import reasons
from kiosk.door.verify import CodeCheck, CodeFormat, VerifyContext, load_all, unknown
from kiosk.door.verify.base import MAX_PAYLOAD_CHARS
from kiosk.trust.bundle import TrustKeeper
from kiosk.trust.store import TrustStore

log = logging.getLogger(__name__)


class Verifier:
    """Runs the first plug-in that claims a payload.

    ``trust`` is the kiosk's :class:`kiosk.trust.bundle.TrustKeeper`; a plain
    :class:`kiosk.trust.store.TrustStore` (a tool's, a test's) is held by one.
    """

    def __init__(self, trust: TrustKeeper | TrustStore, formats: list[CodeFormat] | None = None,
                 clock_skew_seconds: float = 300.0):
        self.trust = trust if isinstance(trust, TrustKeeper) else TrustKeeper.holding(trust)
        self.formats = formats if formats is not None else load_all()
        self.clock_skew_seconds = clock_skew_seconds

    def check(self, payload: str, at: datetime | None = None) -> CodeCheck:
        """Detect the format of ``payload`` and verify it at time ``at`` (default: now)."""
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)  # a naive clock is UTC, never compared naive-to-aware
        snapshot = self.trust.current()
        ctx = VerifyContext(now=at or datetime.now(timezone.utc), trust=snapshot,
                            clock_skew_seconds=self.clock_skew_seconds)
        too_long = len(payload) > MAX_PAYLOAD_CHARS
        for fmt in self.formats:
            try:
                # Detection is cheap (a prefix, a count of separators) and sees the whole payload,
                # so an over-long code is (this format, malformed) whatever its length.
                if not fmt.detects(payload):
                    continue
                if too_long:
                    return CodeCheck.reject(fmt.name, reasons.MALFORMED, "payload longer than any QR code holds")
                check = fmt.check(payload, ctx)
            except Exception as exc:  # a plug-in bug must not become a crash at the door
                log.warning("%s plug-in raised %s on a payload; rejected as malformed", fmt.name, type(exc).__name__)
                return CodeCheck.reject(fmt.name, reasons.MALFORMED, f"{type(exc).__name__}")
            return self._after_trust(check, snapshot)
        if too_long:
            return CodeCheck.reject("unknown", reasons.MALFORMED, "payload longer than any QR code holds")
        return unknown(payload)

    def _after_trust(self, check: CodeCheck, snapshot: TrustStore) -> CodeCheck:
        if not check.signed or check.reason == reasons.MALFORMED:
            return check
        if self.trust.stale:
            version = snapshot.version
            return dataclasses.replace(check, valid=False, reason=reasons.TRUST_STALE,
                                       detail=f"trust bundle {version} is older than [trust] max_age_hours")
        revocations = snapshot.revocations
        hashes = check.facts.get("revocation") if check.facts else None
        if revocations is not None and hashes and check.valid:
            kind = revocations.revoked(hashes)
            if kind:
                return dataclasses.replace(check, valid=False, reason=reasons.REVOKED,
                                           detail=f"on the trust bundle's revocation list ({kind})")
        return check
