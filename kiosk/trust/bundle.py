"""The signed trust bundle, kiosk side: verify it, keep the last good one, swap it in atomically.

One bundle holds everything a kiosk trusts (format in docs/codes.md, "Trust
bundles"): EU DCC document signers, health-declaration issuers, value sets, the
revocation list and optionally venue-policy rules. It is a JSON object signed
with :func:`kiosk.wire.signing.sign` by the trust authority's Ed25519 key, bound to
the fixed purpose :data:`BINDING` instead of an MQTT topic, so the same bytes
are valid as a file (``[trust] bundle``), on the fleet topic
``checkin/v1/trust/bundle`` and on a site's ``checkin/v1/{site}/trust/bundle``.

As python-tuf's client does, :meth:`TrustKeeper.offer` checks in a fixed order,
each failure one stable reason: size, shape, signature (by a key of the
provisioned authority key ring), type, version (never lower than the current
one; the same version only with the same bytes), issue time, expiry, site, and
last the content. A bundle that passes replaces the current one in one
reference assignment that :class:`kiosk.door.verify.verifier.Verifier` and
:class:`kiosk.door.decide.policy.Policy` read; it is saved in ``state_dir`` so that the
kiosk restarts with it. A bad bundle changes nothing.

The keeper does no network I/O and never blocks on anything but its own lock:
a retained-topic handler hands the bytes to the control thread, which calls
``keeper.offer(payload, source=topic)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from cryptography import x509

from kiosk.wire import reasons, signing
from kiosk.wire.reasons import EXPIRED, NOT_YET_VALID, ROLLBACK, SAME_VERSION, TOO_LARGE, WRONG_SITE, WRONG_TYPE
from kiosk.errors import SignatureRefused
from kiosk.trust.store import Revocations, TrustError, TrustStore, read_capped

log = logging.getLogger(__name__)

BINDING = "kiosk-trust-bundle/v1"  # what the signature is bound to (in place of an MQTT topic)
TYPE = "kiosk-trust-bundle"
SPEC = 1
MAX_BUNDLE_BYTES = 16 * 1024 * 1024  # 1,000 signers take about 1 MB; revocation lists may be long
STATE_FILE = "trust-bundle.json"
FUTURE_SKEW_SECONDS = 300.0
DCC_TYPES = ("vaccination", "test", "recovery")

# Outcomes of an accepted offer.
APPLIED = "applied"
UNCHANGED = "unchanged"

_HEX = re.compile(r"[0-9a-f]{32}([0-9a-f]{32})?")
_COUNTRY = re.compile(r"[A-Z]{2}")


class BundleRefused(SignatureRefused):
    """A trust bundle that must not be applied; ``reason`` is one stable word; ``version`` the
    offered bundle's, once it could be read."""

    version: int | None = None


@dataclass(frozen=True)
class Offered:
    """What :meth:`TrustKeeper.offer` did: ``ok`` (applied or unchanged) or refused with ``reason``."""

    ok: bool
    reason: str
    version: int | None = None  # the offered bundle's version, when it could be read
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


# -- reading a bundle -------------------------------------------------------------------------

def _time(value: Any, where: str) -> datetime:
    try:
        return signing.parse_iso(value)
    except SignatureRefused:
        raise BundleRefused(reasons.MALFORMED, f"{where} is not an ISO 8601 time") from None


def open_bundle(data: bytes, authority: signing.KeyRing) -> dict:
    """The bundle's payload once its size, shape, signature and type check out (no clock, no
    version: those are the keeper's); raises :class:`BundleRefused`."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleRefused(TOO_LARGE, f"larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        verified = signing.verify(data, BINDING, authority, max_bytes=MAX_BUNDLE_BYTES)
    except BundleRefused:
        raise
    except SignatureRefused as exc:
        raise BundleRefused(exc.reason, exc.detail) from None
    body = verified.payload
    if body.get("type") != TYPE or body.get("spec") != SPEC:
        raise BundleRefused(WRONG_TYPE, f"not a {TYPE} of spec {SPEC}")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**53:
        raise BundleRefused(reasons.MALFORMED, "version must be a positive integer")
    return body


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or len(value) > 64 * 1024:
        raise BundleRefused(reasons.MALFORMED, f"{where}: not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleRefused(reasons.MALFORMED, f"{where}: not base64") from None


def _add_entries(store: TrustStore, entries: Any, role: str) -> None:
    key = "signers" if role == "dcc" else "declaration_issuers"
    if entries is None:
        return
    if not isinstance(entries, list):
        raise BundleRefused(reasons.MALFORMED, f"{key} is not a list")
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        if not isinstance(entry, Mapping):
            raise BundleRefused(reasons.MALFORMED, f"{where} is not an object")
        der = _b64(entry.get("certificate"), f"{where}.certificate")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise BundleRefused(reasons.MALFORMED, f"{where}.certificate is not a DER certificate") from None
        kid = _b64(entry["kid"], f"{where}.kid") if entry.get("kid") is not None else None
        if kid is not None and not 1 <= len(kid) <= 32:
            raise BundleRefused(reasons.MALFORMED, f"{where}.kid has {len(kid)} bytes")
        country = entry.get("country")
        if country is not None and not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
            raise BundleRefused(reasons.MALFORMED, f"{where}.country is not an ISO 3166 alpha-2 code")
        nb = _time(entry["not_before"], f"{where}.not_before") if entry.get("not_before") else None
        na = _time(entry["not_after"], f"{where}.not_after") if entry.get("not_after") else None
        usage = entry.get("usage")
        if usage is not None and (not isinstance(usage, list) or any(u not in DCC_TYPES for u in usage)):
            raise BundleRefused(reasons.MALFORMED, f"{where}.usage must list {', '.join(DCC_TYPES)}")
        try:
            store.add_certificate(cert, kid=kid, country=country, source=f"bundle {key}", der=der, role=role,
                                  not_before=nb, not_after=na,
                                  dcc_types=frozenset(usage) if usage is not None else None)
        except (ValueError, TypeError) as exc:  # a public key cryptography cannot load
            raise BundleRefused(reasons.MALFORMED, f"{where}: {exc}") from None


def _valuesets(value: Any) -> dict[str, frozenset[str]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BundleRefused(reasons.MALFORMED, "valuesets is not an object")
    out = {}
    for name, codes in value.items():
        if not re.fullmatch(r"[a-z0-9-]{1,64}", str(name)) or not isinstance(codes, list) \
                or not all(isinstance(c, str) and len(c) <= 128 for c in codes):
            raise BundleRefused(reasons.MALFORMED, f"valuesets.{str(name)[:64]} is not a list of codes")
        out[f"valuesets/{name}.json"] = frozenset(codes)
    return out


def _revocations(value: Any) -> Revocations:
    if value is None:
        return Revocations()
    if not isinstance(value, Mapping) or any(k not in Revocations.TYPES for k in value):
        raise BundleRefused(reasons.MALFORMED, f"revocation keys must be among {', '.join(Revocations.TYPES)}")
    sets = {}
    for kind, hashes in value.items():
        if not isinstance(hashes, list) or not all(isinstance(h, str) and _HEX.fullmatch(h) for h in hashes):
            raise BundleRefused(reasons.MALFORMED, f"revocation.{kind} must be SHA-256 hex (64 or 32 digits)")
        sets[kind] = frozenset(hashes)
    return Revocations(**sets)


# The venue-policy rules a bundle may carry (its ``policy`` object): each is the [policy] key and
# the door's Policy field of the same name (tests/test_door_decide_policy.py holds the two together), by kind.
POLICY_RULES: dict[str, type] = {
    "accept_formats": list, "accept_unsigned": bool, "accept_statuses": list, "dcc_types": list,
    "vaccination_complete": bool, "vaccination_min_days": int, "vaccination_max_days": int, "test_max_hours": int,
    "test_negative_only": bool, "recovery_max_days": int, "clock_skew_seconds": float, "dcc_products": list,
    "dcc_manufacturers": list,
}


def policy_problem(rules: object) -> str | None:
    """Why a trust bundle's ``policy`` object cannot be applied (None when it can)."""
    if not isinstance(rules, dict):
        return "not an object"
    for key, value in rules.items():
        kind = POLICY_RULES.get(key)
        if kind is None:
            return f"unknown rule {str(key)[:40]!r}"
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind in (int, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**9
        else:
            ok = isinstance(value, list) and all(isinstance(v, str) and len(v) <= 128 for v in value)
        if not ok:
            return f"{key}: wrong type"
    return None


def store_of(body: Mapping) -> TrustStore:
    """The :class:`TrustStore` a verified bundle payload describes; BundleRefused(malformed)."""
    policy = body.get("policy")
    if policy is not None:
        problem = policy_problem(policy)
        if problem:
            raise BundleRefused(reasons.MALFORMED, f"policy: {problem}")
    site = body.get("site")
    store = TrustStore(issued_at=_time(body.get("issued_at"), "issued_at"), version=body["version"],
                       expires_at=_time(body.get("expires_at"), "expires_at"),
                       valuesets=_valuesets(body.get("valuesets")), revocations=_revocations(body.get("revocation")),
                       policy=dict(policy) if policy is not None else None,
                       site=site if isinstance(site, str) else None)
    _add_entries(store, body.get("signers"), "dcc")
    _add_entries(store, body.get("declaration_issuers"), "declaration")
    return store


def load_authority_key(path: str | os.PathLike) -> signing.KeyRing:
    """The trust authority's public key (PEM) as a key ring; read capped, FIFOs and devices
    refused (:class:`kiosk.trust.store.TrustError`), a bad key a SigningKeyError naming the file."""
    data = read_capped(path, 16384, what="authority key")
    key = signing.public_key_from_pem(data, str(path))
    return signing.KeyRing.of([("trust-authority", key)])


# -- the keeper -------------------------------------------------------------------------------

class TrustKeeper:
    """The kiosk's current trust data: the last good bundle, or the plain ``fallback`` store.

    Pass it wherever a trust store goes (``Verifier(keeper)``); every check reads
    :meth:`current` once. ``offer`` is thread-safe; readers take no lock.
    """

    def __init__(self, authority: signing.KeyRing, *, state_dir: str | os.PathLike | None = None,
                 max_age_hours: float = 0, fallback: TrustStore | None = None, site: str | None = None,
                 clock: Callable[[], float] = time.time):
        self.authority = authority
        self.state_path = Path(state_dir) / STATE_FILE if state_dir else None
        self.max_age_hours = max_age_hours
        self.fallback = fallback if fallback is not None else TrustStore.empty()
        self.site = site
        self.clock = clock
        self._store: TrustStore = self.fallback  # replaced in one assignment: readers never see a mix
        self._digest: str | None = None  # SHA-256 of the current bundle's bytes
        self._lock = threading.Lock()
        self._listeners: list[Callable[[TrustStore], None]] = []

    @classmethod
    def holding(cls, store: TrustStore) -> "TrustKeeper":
        """A keeper of plain trust files only (no authority, so no bundle): a tool's or a test's trust."""
        return cls(signing.KeyRing(), fallback=store)

    # -- what the verifier, the policy and health read ------------------------------
    def current(self) -> TrustStore:
        """The store every check uses: one reference, read once per check."""
        return self._store

    def find(self, kid):
        return self._store.find(kid)

    def signers(self):
        return self._store.signers()

    def __len__(self) -> int:
        return len(self._store)

    @property
    def bundle_loaded(self) -> bool:
        return self._store.version is not None

    @property
    def version(self) -> int | None:
        return self._store.version

    @property
    def issued_at(self) -> datetime | None:
        return self._store.issued_at if self.bundle_loaded else None

    @property
    def expires_at(self) -> datetime | None:
        return self._store.expires_at

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    @property
    def age_hours(self) -> float | None:
        """Hours since the current bundle was issued; None without a bundle."""
        if not self.bundle_loaded or self._store.issued_at is None:
            return None
        return max(0.0, (self._now() - self._store.issued_at).total_seconds() / 3600)

    @property
    def age_days(self) -> float | None:
        """Days since the trust data was issued (bundle or plain files): the guard's status bar."""
        hours = self.age_hours
        if hours is not None:
            return hours / 24
        return self.fallback.age_days

    @property
    def stale(self) -> bool:
        """True when the bundle is older than ``max_age_hours`` or past its own expiry: signed
        codes are then ``trust-stale``. Plain trust files are never stale (nothing to renew)."""
        if not self.bundle_loaded:
            return False
        age = self.age_hours
        if self.max_age_hours and age is not None and age > self.max_age_hours:
            return True
        return self._store.expires_at is not None and self._now() > self._store.expires_at

    def replace_fallback(self, store: TrustStore) -> None:
        """New plain trust files (``[trust] paths``, re-read by ``reload-trust``): in use at once
        while no bundle is loaded, else kept for later; a loaded bundle stays."""
        with self._lock:
            if self._store is self.fallback:
                self._store = store
            self.fallback = store

    def add_listener(self, callback: Callable[[TrustStore], None]) -> None:
        """``callback(store)`` after each applied bundle, on the offering thread (keep it short)."""
        self._listeners.append(callback)

    # -- changing it ---------------------------------------------------------------------
    def offer(self, data: bytes, source: str = "", *, allow_expired: bool = False, persist: bool = True) -> Offered:
        """Verify ``data`` and apply it if it is good and new; never raises for a bad bundle."""
        if not isinstance(data, (bytes, bytearray)):
            return Offered(False, reasons.MALFORMED, None, "not bytes")
        data = bytes(data)
        with self._lock:
            try:
                offered = self._check_and_apply(data, allow_expired)
            except BundleRefused as exc:
                log.warning("trust bundle from %s refused: %s", source or "?", exc)
                return Offered(False, exc.reason, exc.version, exc.detail)
            if offered.reason == UNCHANGED:
                return offered
            if persist:
                self._persist(data)
            store = self._store
        log.info("trust bundle %s from %s applied: %d signers, %d revoked, issued %s",
                 store.version, source or "?", len(store), len(store.revocations),
                 store.issued_at.isoformat() if store.issued_at else "?")
        for callback in list(self._listeners):
            try:
                callback(store)
            except Exception:  # a listener's bug must not undo or hide the applied bundle
                log.exception("trust bundle listener failed")
        return offered

    def _check_and_apply(self, data: bytes, allow_expired: bool) -> Offered:
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:  # a retained message again after a reconnect: nothing to do
            return Offered(True, UNCHANGED, self._store.version)
        body = open_bundle(data, self.authority)
        version = body["version"]
        try:
            current = self._store.version
            if current is not None and version < current:
                raise BundleRefused(ROLLBACK, f"version {version} is older than the current {current}")
            if current is not None and version == current:
                raise BundleRefused(SAME_VERSION, f"version {version} is current, with other content")
            now = self._now()
            issued = _time(body.get("issued_at"), "issued_at")
            expires = _time(body.get("expires_at"), "expires_at")
            if issued > now + timedelta(seconds=FUTURE_SKEW_SECONDS):
                raise BundleRefused(NOT_YET_VALID, f"issued {issued.isoformat()}, after the clock")
            if expires <= issued:
                raise BundleRefused(reasons.MALFORMED, "expires_at is not after issued_at")
            if now > expires and not allow_expired:
                raise BundleRefused(EXPIRED, f"expired {expires.isoformat()}")
            site = body.get("site")
            if site is not None and site != self.site:
                raise BundleRefused(WRONG_SITE, f"bundle for site {str(site)[:64]!r}")
            store = store_of(body)
        except BundleRefused as exc:
            exc.version = version
            raise
        self._store = store  # the one atomic swap
        self._digest = digest
        return Offered(True, APPLIED, version)

    def load_file(self, path: str | os.PathLike) -> Offered:
        """Offer a bundle file (``[trust] bundle``); an unreadable file is refused like a bad bundle."""
        try:
            data = read_capped(path, MAX_BUNDLE_BYTES, what="trust bundle")
        except TrustError as exc:
            log.warning("%s", exc)
            return Offered(False, "unreadable", None, str(exc))
        return self.offer(data, source=str(path))

    def restore(self) -> Offered | None:
        """Apply the last good bundle saved in ``state_dir`` (at start-up). It may have expired
        while the kiosk was off: it is applied all the same and reported stale, so that the guard
        sees ``trust-stale`` rather than every signer unknown."""
        if self.state_path is None or not self.state_path.exists():
            return None
        try:
            data = read_capped(self.state_path, MAX_BUNDLE_BYTES, what="saved trust bundle")
        except TrustError as exc:
            log.warning("%s", exc)
            return Offered(False, "unreadable", None, str(exc))
        return self.offer(data, source=str(self.state_path), allow_expired=True, persist=False)

    def _persist(self, data: bytes) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.state_path)
        except OSError as exc:  # the bundle stays applied; only a restart would lose it
            log.warning("cannot save the trust bundle in %s: %s", self.state_path, exc.strerror or exc)


def open_keeper(*, paths: list[Path], authority_key: Path | None, bundle: Path | None, state_dir: Path,
                max_age_hours: float, site: str | None, clock: Callable[[], float] = time.time) -> TrustKeeper:
    """The kiosk's keeper (from ``[trust]``, its paths resolved): ``paths`` as the fallback, the
    authority key, the saved bundle from ``state_dir``, then ``bundle`` if configured. A bad or
    missing bundle file is logged and the last good bundle kept; a bad authority key or trust path
    raises (a configuration error, found by ``kiosk config check`` as at start-up)."""
    fallback = TrustStore.load([str(p) for p in paths]) if paths else TrustStore.empty()
    authority = load_authority_key(authority_key) if authority_key else signing.KeyRing()
    keeper = TrustKeeper(authority, state_dir=state_dir, max_age_hours=max_age_hours, fallback=fallback,
                         site=site or None, clock=clock)
    if len(authority):
        keeper.restore()
    if bundle:
        if not len(authority):
            log.error("[trust] bundle is set but [trust] authority_key is not: no bundle can be trusted")
        else:
            keeper.load_file(bundle)
    return keeper
