"""The trust store: which signers' codes the kiosk believes, looked up by key id (kid).

It is loaded from PEM or DER certificates, folders of them, and trust-list
JSON files (format in ``docs/codes.md``)::

    {"issued_at": "2021-11-20T00:00:00Z",
     "certificates": [{"kid": "<base64>", "country": "VN", "certificate": "<base64 DER>"}]}

The kid of a certificate is the first 8 bytes of the SHA-256 of its DER
encoding (the EU DCC rule, used for our own declarations too); a trust-list
entry may name its kid explicitly. Each signer keeps the DCC certificate
types its key-usage OIDs allow (``None`` = any type) and its certificate's
validity (a signer vouches only for codes issued while it was valid).

A store is also what a signed trust bundle becomes once verified
(:mod:`kiosk.trust.bundle`): then it carries the bundle's version, times,
value sets, revocation hashes and optional venue-policy rules too. Files are
read with a size cap; FIFOs, devices and sockets are refused before any read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.errors import KioskValueError

# Extended key usage OIDs of a DCC document signer (DCC technical specification v1, 5.1).
_USAGE_OIDS = {
    "1.3.6.1.4.1.1847.2021.1.1": "test",
    "1.3.6.1.4.1.1847.2021.1.2": "vaccination",
    "1.3.6.1.4.1.1847.2021.1.3": "recovery",
    "1.3.6.1.4.1.0.1847.2021.1.1": "test",
    "1.3.6.1.4.1.0.1847.2021.1.2": "vaccination",
    "1.3.6.1.4.1.0.1847.2021.1.3": "recovery",
}
USAGE_OIDS = {"test": "1.3.6.1.4.1.1847.2021.1.1", "vaccination": "1.3.6.1.4.1.1847.2021.1.2",
              "recovery": "1.3.6.1.4.1.1847.2021.1.3"}

CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}
# Trust material is small: a national trust list is well under a megabyte.
_MAX_FILE_BYTES = 16 * 1024 * 1024


class TrustError(KioskValueError):
    """A trust file or folder that cannot be used; the message names the path."""


def read_capped(path: str | os.PathLike, max_bytes: int = _MAX_FILE_BYTES, what: str = "trust file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; TrustError naming the path otherwise.

    Opened non-blocking and checked with fstat before reading, so a FIFO (which would block
    until a writer came) or a device such as /dev/zero (which never ends) is refused at once."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TrustError(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (FIFO, device or socket)"
            raise TrustError(f"{p}: {what} is {kind}")
        if st.st_size > max_bytes:
            raise TrustError(f"{p}: larger than any {what} ({max_bytes} bytes)")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # the file grew while we read it
                raise TrustError(f"{p}: larger than any {what} ({max_bytes} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise TrustError(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def kid_of(certificate_der: bytes) -> bytes:
    """The DCC key id of a DER certificate: first 8 bytes of its SHA-256."""
    return hashlib.sha256(certificate_der).digest()[:8]


def key_usage_types(cert: x509.Certificate) -> frozenset[str] | None:
    """DCC types a document signer may sign, from its extended key usage; None = any."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        # Some issuers' certificates carry an extension cryptography cannot parse (e.g. an
        # empty SEQUENCE); without readable key-usage OIDs the signer is not restricted.
        return None
    types = {_USAGE_OIDS[o.dotted_string] for o in eku if o.dotted_string in _USAGE_OIDS}
    return frozenset(types) if types else None


@dataclass(frozen=True)
class Signer:
    """One trusted signing key."""

    kid: bytes
    public_key: Any
    certificate: x509.Certificate | None = None
    country: str | None = None
    dcc_types: frozenset[str] | None = None  # None: no DCC key-usage OIDs, any type
    sha256: str = ""  # hex SHA-256 of the DER certificate (for revocation), "" without one
    source: str = ""
    not_before: datetime | None = None  # the certificate's validity (narrowed by a bundle entry)
    not_after: datetime | None = None
    role: str | None = None  # "dcc" document signer, "declaration" issuer; None = either (plain files)


def certificate_validity(cert: x509.Certificate) -> tuple[datetime, datetime]:
    """A certificate's not-before and not-after, timezone-aware (cryptography < 42 has no *_utc)."""
    try:
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    except AttributeError:  # pragma: no cover - Bookworm's cryptography 38
        return (cert.not_valid_before.replace(tzinfo=timezone.utc), cert.not_valid_after.replace(tzinfo=timezone.utc))


def signer_validity_problem(signer: Signer, issued: datetime, now: datetime | None = None) -> str | None:
    """Why ``signer`` cannot vouch for a code issued at ``issued`` and checked at ``now`` (None if it can).

    The certificate must not have expired before the code was issued: an expired signer's key
    may be in anyone's hands, so a code it signs later proves nothing. A not-before later than
    the code's issue time (or the clock) is tolerated, as the EU reference data expects
    (PL/1.3.0/10: issued and checked before its signer's not-before): that key was not
    compromised then. ``now`` is accepted for callers that want to report it.
    """
    na = signer.not_after
    if na is not None and issued > na:
        return f"signer certificate expired {na.date().isoformat()}, before the code's issue time"
    return None


@dataclass(frozen=True)
class Revocations:
    """Revoked codes by EU DCC hash type (lower-case hex SHA-256, or its first 128 bits)."""

    uvci: frozenset[str] = frozenset()
    country_uvci: frozenset[str] = frozenset()
    signature: frozenset[str] = frozenset()
    declaration: frozenset[str] = frozenset()  # SHA-256 of a health declaration's id

    TYPES = ("uvci", "country_uvci", "signature", "declaration")

    def __len__(self) -> int:
        return sum(len(getattr(self, t)) for t in self.TYPES)

    def revoked(self, hashes: Mapping[str, str]) -> str | None:
        """The hash type under which one of ``hashes`` ({type: hex}) is revoked, or None."""
        for kind in self.TYPES:
            h = hashes.get(kind)
            listed = getattr(self, kind)
            if h and listed and (h in listed or h[:32] in listed):
                return kind
        return None


class TrustStore:
    """Signers by kid. ``TrustStore.load(paths)`` or ``TrustStore.empty()``."""

    def __init__(self, signers: Iterable[Signer] = (), issued_at: datetime | None = None, *,
                 version: int | None = None, expires_at: datetime | None = None,
                 valuesets: Mapping[str, frozenset[str]] | None = None, revocations: Revocations | None = None,
                 policy: Mapping[str, Any] | None = None, site: str | None = None):
        self._by_kid: dict[bytes, list[Signer]] = {}
        for s in signers:
            self.add(s)
        self.issued_at = issued_at
        self.version = version  # a trust bundle's version; None for plain files
        self.expires_at = expires_at
        self.valuesets = valuesets  # None: the shipped snapshot (kiosk.door.verify.dcc.shipped_valuesets)
        self.revocations = revocations or Revocations()
        self.policy = policy  # venue-policy rules a bundle carries ([policy] keys), or None
        self.site = site

    def current(self) -> "TrustStore":
        """The store itself: a store is its own snapshot (a TrustKeeper returns its current store)."""
        return self

    @property
    def stale(self) -> bool:
        return False

    @classmethod
    def empty(cls) -> "TrustStore":
        """A store that trusts nobody: every signed code is ``unknown-key``."""
        return cls()

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike]) -> "TrustStore":
        """Load certificates, folders of certificates and trust-list JSON files.

        Raises :class:`TrustError` (a ValueError) naming the path for anything
        unreadable or not trust material.
        """
        store = cls()
        stamps: list[datetime] = []
        for p in paths:
            path = Path(p)
            if path.is_dir():
                # Private-key files (*.key.pem, *.key) may sit beside their certificates: skip them.
                try:
                    files = sorted(f for f in path.iterdir() if f.is_file()
                                   and not f.name.lower().endswith((".key.pem", ".key"))
                                   and (f.suffix.lower() in CERT_SUFFIXES or f.suffix.lower() == ".json"))
                except OSError as exc:
                    raise TrustError(f"{path}: cannot read folder: {exc.strerror or exc}") from None
                if not files:
                    raise TrustError(f"{path}: folder holds no certificates (.pem .crt .cer .der) or trust lists (.json)")
            else:
                files = [path]
            for f in files:
                stamps.append(store._load_file(f))
        store.issued_at = min(stamps) if stamps else None
        return store

    @classmethod
    def from_certificates(cls, certificates: Iterable[bytes | x509.Certificate]) -> "TrustStore":
        """A store of DER (or already parsed) certificates, e.g. for tests."""
        store = cls()
        for c in certificates:
            store.add_certificate(c if isinstance(c, x509.Certificate) else x509.load_der_x509_certificate(c))
        return store

    def add(self, signer: Signer) -> None:
        same = self._by_kid.setdefault(signer.kid, [])
        if signer.sha256 and any(s.sha256 == signer.sha256 for s in same):
            return  # the same certificate from two files
        same.append(signer)

    def add_certificate(self, cert: x509.Certificate, kid: bytes | None = None, country: str | None = None,
                        source: str = "", der: bytes | None = None, role: str | None = None,
                        not_before: datetime | None = None, not_after: datetime | None = None,
                        dcc_types: frozenset[str] | None = None) -> Signer:
        """Trust ``cert``; a bundle entry may narrow its validity and key usage, never widen them."""
        der = der or cert.public_bytes(serialization.Encoding.DER)
        if country is None:  # once here, not at every check: the issuing country of its codes
            country = _subject_country(cert)
        nb, na = certificate_validity(cert)
        types = key_usage_types(cert)
        if dcc_types is not None:
            types = dcc_types if types is None else frozenset(types & dcc_types)
        signer = Signer(kid=kid or kid_of(der), public_key=cert.public_key(), certificate=cert, country=country,
                        dcc_types=types, sha256=hashlib.sha256(der).hexdigest(), source=source,
                        not_before=max(nb, not_before) if not_before else nb,
                        not_after=min(na, not_after) if not_after else na, role=role)
        self.add(signer)
        return signer

    def find(self, kid: bytes | None) -> list[Signer]:
        """Signers with this kid (usually one; kids can collide, so callers try each)."""
        if kid is None:
            return []
        return self._by_kid.get(bytes(kid), [])

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kid.values())

    def signers(self) -> list[Signer]:
        return [s for v in self._by_kid.values() for s in v]

    @property
    def age_days(self) -> float | None:
        """Days since the trust material was issued (or its files written); None when empty."""
        if self.issued_at is None:
            return None
        return max(0.0, (datetime.now(timezone.utc) - self.issued_at).total_seconds() / 86400)

    # -- loading ---------------------------------------------------------------------------

    def _load_file(self, path: Path) -> datetime:
        data = read_capped(path)
        try:
            mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except OSError as exc:
            raise TrustError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if path.suffix.lower() == ".json" or data.lstrip()[:1] == b"{":
            return self._load_trust_list(path, data) or mtime
        for cert in parse_certificates(path, data):
            self.add_certificate(cert, source=str(path))
        return mtime

    def _load_trust_list(self, path: Path, data: bytes) -> datetime | None:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TrustError(f"{path}: not a JSON trust list: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("certificates"), list):
            raise TrustError(f"{path}: trust list needs a \"certificates\" array")
        issued = None
        if doc.get("issued_at") is not None:
            try:
                issued = _parse_time(doc["issued_at"])
            except (TypeError, ValueError):
                raise TrustError(f"{path}: issued_at {doc['issued_at']!r} is not an ISO 8601 time") from None
        for i, entry in enumerate(doc["certificates"]):
            where = f"{path}: certificates[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("certificate"), str):
                raise TrustError(f"{where}: needs \"certificate\" (base64 DER)")
            try:
                der = base64.b64decode(entry["certificate"], validate=True)
                cert = x509.load_der_x509_certificate(der)
                kid = base64.b64decode(entry["kid"], validate=True) if entry.get("kid") else None
            except (binascii.Error, ValueError, TypeError) as exc:
                raise TrustError(f"{where}: bad certificate or kid: {exc}") from None
            country = entry.get("country")
            self.add_certificate(cert, kid=kid, country=country if isinstance(country, str) else None,
                                 source=str(path))
        return issued


def parse_certificates(path: Path, data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (one or more blocks) or one DER certificate."""
    if b"-----BEGIN" in data:
        certs = []
        # Split by hand: load_pem_x509_certificates appeared only in cryptography 39 (Bookworm has 38).
        for block in data.split(b"-----BEGIN CERTIFICATE-----")[1:]:
            end = block.find(b"-----END CERTIFICATE-----")
            if end < 0:
                raise TrustError(f"{path}: PEM certificate block is not terminated")
            pem = b"-----BEGIN CERTIFICATE-----" + block[:end] + b"-----END CERTIFICATE-----\n"
            try:
                certs.append(x509.load_pem_x509_certificate(pem))
            except ValueError as exc:
                raise TrustError(f"{path}: bad PEM certificate: {exc}") from None
        if not certs:
            raise TrustError(f"{path}: PEM file holds no certificate (a private key is not trust material)")
        return certs
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise TrustError(f"{path}: not a PEM or DER certificate, nor a JSON trust list") from None


def _subject_country(cert: x509.Certificate) -> str | None:
    try:
        attrs = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COUNTRY_NAME)
    except ValueError:
        return None
    value = attrs[0].value if attrs else None
    return value if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isupper() else None


def _parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def trust_list_json(store: TrustStore, issued_at: datetime | None = None) -> str:
    """Serialize ``store``'s certificates as a trust-list JSON document."""
    entries = []
    for s in store.signers():
        if s.certificate is None:
            continue
        der = s.certificate.public_bytes(serialization.Encoding.DER)
        entry = {"kid": base64.b64encode(s.kid).decode(), "certificate": base64.b64encode(der).decode()}
        if s.country:
            entry["country"] = s.country
        entries.append(entry)
    issued = (issued_at or datetime.fromtimestamp(time.time(), timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"issued_at": issued, "certificates": entries}, indent=2)
