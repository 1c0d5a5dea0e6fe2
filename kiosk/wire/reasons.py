"""Stable reasons: the words the ledger, MQTT, ``kiosk verify``, the screen and the centre share.

A reason never changes once published (the centre and the dashboards count by it).
Each word is defined here once:

* a check-in's verdict reason (:data:`VERDICT_REASONS`, and ``policy:<rule>``);
* why a signed message (command, telemetry, trace request) was refused (:data:`REFUSALS`,
  :mod:`kiosk.wire.signing`), checked in a fixed order as python-tuf does;
* why a trust bundle was refused (:data:`BUNDLE_REFUSALS`, :mod:`kiosk.trust.bundle`).

The same word means the same thing wherever it appears: ``expired`` is a code past its
validity, a command past its ``exp`` and a bundle past ``expires_at``. The visitor's
words for each verdict reason are the screen's (:mod:`kiosk.door.show.reason_text`).
"""

from __future__ import annotations

# -- a check-in's verdict reason ---------------------------------------------------------
OK = "ok"
MALFORMED = "malformed"
UNKNOWN_FORMAT = "unknown-format"
UNKNOWN_KEY = "unknown-key"
SIGNATURE_INVALID = "signature-invalid"
EXPIRED = "expired"
NOT_YET_VALID = "not-yet-valid"
KEY_USAGE = "key-usage"
SCHEMA = "schema"
UNSIGNED = "unsigned"
REVOKED = "revoked"
DUPLICATE = "duplicate"
OVERRIDE = "override"
TRUST_STALE = "trust-stale"
POLICY_PREFIX = "policy:"

VERDICT_REASONS = (OK, MALFORMED, UNKNOWN_FORMAT, UNKNOWN_KEY, SIGNATURE_INVALID, EXPIRED, NOT_YET_VALID, KEY_USAGE,
                   SCHEMA, UNSIGNED, REVOKED, DUPLICATE, OVERRIDE, TRUST_STALE)
# The venue-policy rules a reject may name (``policy:<rule>``).
POLICY_RULES = ("format", "status", "vaccination-incomplete", "vaccination-too-recent", "vaccination-too-old",
                "test-positive", "test-too-old", "test-in-future", "recovery-window", "certificate-type")

# -- a signed message refused (shape, key, signature, time, replay: in that order) -------------
BAD_SIGNATURE = "bad-signature"
STALE = "stale"
REPLAYED = "replayed"
REFUSALS = (MALFORMED, UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, NOT_YET_VALID, STALE, EXPIRED, REPLAYED)

# -- a trust bundle refused (besides the envelope's refusals) ------------------------------
TOO_LARGE = "too-large"
WRONG_TYPE = "wrong-type"
ROLLBACK = "rollback"
SAME_VERSION = "same-version"
WRONG_SITE = "wrong-site"
BUNDLE_REFUSALS = (TOO_LARGE, WRONG_TYPE, ROLLBACK, SAME_VERSION, NOT_YET_VALID, EXPIRED, WRONG_SITE)


def is_known(reason: str) -> bool:
    """True for a verdict reason this version knows (and the screen can name in plain words)."""
    if reason.startswith(POLICY_PREFIX):
        return True
    return reason in VERDICT_REASONS


def policy(rule: str) -> str:
    """The reason code for a venue-policy rule, e.g. ``policy:test-too-old``."""
    return POLICY_PREFIX + rule
