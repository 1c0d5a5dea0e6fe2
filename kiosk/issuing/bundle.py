"""The trust authority's tools: build, sign, check and publish trust bundles (never on a kiosk).

A bundle (format in docs/codes.md, "Trust bundles") is built from what a
national trust-list operator has at hand: folders of PEM/DER document-signer
certificates, a national public trust-list export (JSON entries with ``kid``,
``country`` and the DER certificate), EU value-set files, revocation files,
health-declaration issuers' certificates and optionally venue-policy rules.
It is signed with the authority's Ed25519 key by :func:`kiosk.wire.signing.sign`,
bound to :data:`kiosk.trust.bundle.BINDING`; kiosks check it with
:class:`kiosk.trust.bundle.TrustKeeper`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.wire import signing, topics
from kiosk.errors import KioskValueError
from kiosk.trust.store import (CERT_SUFFIXES, Revocations, TrustError, certificate_validity, key_usage_types, kid_of,
                               parse_certificates, read_capped)
from kiosk.trust.bundle import BINDING, SPEC, TYPE, policy_problem

class BundleBuildError(KioskValueError):
    """Input the bundle cannot be built from; the message names the file and entry."""


def _iso(t: datetime) -> str:
    return signing.iso(t)


def entry_of(cert: x509.Certificate, der: bytes | None = None, kid: bytes | None = None,
             country: str | None = None) -> dict:
    """A bundle entry for ``cert``: kid, country, validity and key usage spelled out (the
    kiosk narrows the certificate's own to these, never widens them), and the DER certificate."""
    der = der or cert.public_bytes(serialization.Encoding.DER)
    if country is None:
        attrs = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COUNTRY_NAME)
        country = attrs[0].value if attrs and isinstance(attrs[0].value, str) else None
    nb, na = certificate_validity(cert)
    entry = {"kid": base64.b64encode(kid or kid_of(der)).decode(), "country": country,
             "not_before": _iso(nb), "not_after": _iso(na), "certificate": base64.b64encode(der).decode()}
    usage = key_usage_types(cert)
    if usage is not None:
        entry["usage"] = sorted(usage)
    if country is None:
        del entry["country"]
    return entry


def certificates_in(path: str | Path) -> list[dict]:
    """Entries for every certificate in a PEM/DER file or a folder of them."""
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in CERT_SUFFIXES
                   and not f.name.lower().endswith((".key.pem", ".key"))) if p.is_dir() else [p]
    if not files:
        raise BundleBuildError(f"{p}: folder holds no certificates (.pem .crt .cer .der)")
    out = []
    for f in files:
        try:
            for cert in parse_certificates(f, read_capped(f)):
                out.append(entry_of(cert))
        except TrustError as exc:
            raise BundleBuildError(str(exc)) from None
    return out


def trust_list_entries(path: str | Path) -> list[dict]:
    """Entries from a national public trust-list export: a JSON list of entries, or an object
    holding one under ``certificates`` (or ``entries``); each entry has ``kid`` (base64),
    ``country`` and the DER certificate in base64 under ``certificate`` or ``rawData``. Entries
    marked with another ``certificateType`` than DSC (CSCA, upload certificates...) are skipped."""
    p = Path(path)
    try:
        doc = json.loads(read_capped(p))
    except TrustError as exc:
        raise BundleBuildError(str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleBuildError(f"{p}: not JSON: {exc}") from None
    items = doc if isinstance(doc, list) else next(
        (doc[k] for k in ("certificates", "entries") if isinstance(doc, dict) and isinstance(doc.get(k), list)), None)
    if items is None:
        raise BundleBuildError(f"{p}: expected a list of entries or an object with \"certificates\"")
    out = []
    for i, item in enumerate(items):
        where = f"{p}: entry {i}"
        if not isinstance(item, dict):
            raise BundleBuildError(f"{where}: not an object")
        if item.get("certificateType", "DSC") != "DSC":
            continue
        raw = item.get("certificate", item.get("rawData"))
        try:
            der = base64.b64decode(raw, validate=True)
            cert = x509.load_der_x509_certificate(der)
            kid = base64.b64decode(item["kid"], validate=True) if item.get("kid") else None
        except (binascii.Error, ValueError, TypeError) as exc:
            raise BundleBuildError(f"{where}: bad certificate or kid: {exc}") from None
        country = item.get("country")
        out.append(entry_of(cert, der, kid=kid, country=country if isinstance(country, str) else None))
    return out


def valuesets_in(path: str | Path) -> dict[str, list[str]]:
    """EU value-set files (``{"valueSetId": ..., "valueSetValues": {code: ...}}``), one file or a
    folder, by file stem: the name the DCC schema's ``valueset-uri`` uses (``vaccine-mah-manf``)."""
    p = Path(path)
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    out = {}
    for f in files:
        try:
            doc = json.loads(read_capped(f))
        except TrustError as exc:
            raise BundleBuildError(str(exc)) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleBuildError(f"{f}: not JSON: {exc}") from None
        values = doc.get("valueSetValues") if isinstance(doc, dict) else None
        if not isinstance(values, dict):
            raise BundleBuildError(f"{f}: not an EU value-set file (no valueSetValues object)")
        out[f.stem] = sorted(values)
    return out


def revocations_in(path: str | Path) -> dict[str, list[str]]:
    """A revocation file: JSON ``{"uvci": [hex...], "country_uvci": [...], "signature": [...],
    "declaration": [...]}``, or text lines ``<type> <sha256 hex>`` (``#`` comments)."""
    p = Path(path)
    try:
        text = read_capped(p).decode("utf-8")
    except TrustError as exc:
        raise BundleBuildError(str(exc)) from None
    except UnicodeDecodeError:
        raise BundleBuildError(f"{p}: not UTF-8 text") from None
    out: dict[str, set[str]] = {}
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BundleBuildError(f"{p}: not JSON: {exc}") from None
        pairs = [(k, h) for k, v in doc.items() for h in (v if isinstance(v, list) else [v])]
    else:
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                parts = line.split()
                if len(parts) != 2:
                    raise BundleBuildError(f"{p}:{n}: expected '<type> <sha256 hex>'")
                pairs.append((parts[0], parts[1]))
    for kind, h in pairs:
        if kind not in Revocations.TYPES:
            raise BundleBuildError(f"{p}: revocation type {kind!r} is not one of {', '.join(Revocations.TYPES)}")
        h = str(h).lower()
        if len(h) not in (32, 64) or any(c not in "0123456789abcdef" for c in h):
            raise BundleBuildError(f"{p}: {kind} entry is not SHA-256 hex")
        out.setdefault(kind, set()).add(h)
    return {k: sorted(v) for k, v in out.items()}


def uvci_hash(uvci: str, country: str | None = None) -> str:
    """The ``uvci`` (or, with ``country``, the ``country_uvci``) revocation hash of a UVCI."""
    return hashlib.sha256(((country or "") + uvci).encode("utf-8")).hexdigest()


def build(*, signers: Iterable[Mapping] = (), declaration_issuers: Iterable[Mapping] = (),
          valuesets: Mapping[str, list[str]] | None = None, revocation: Mapping[str, Iterable[str]] | None = None,
          policy: Mapping[str, Any] | None = None, version: int | None = None, issued_at: datetime | None = None,
          valid_days: float = 7.0, site: str | None = None) -> dict:
    """An unsigned bundle payload. ``version`` defaults to the issue time in whole seconds, so
    bundles built one after another are numbered upwards without a counter to keep."""
    issued = (issued_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    version = version if version is not None else int(issued.timestamp())
    if isinstance(version, bool) or not isinstance(version, int) or version <= 0:
        raise BundleBuildError("version must be a positive integer")
    seen: dict[str, dict] = {}
    for e in signers:  # one certificate listed by two sources is one signer
        seen.setdefault(e["certificate"], dict(e))
    body: dict[str, Any] = {
        "type": TYPE, "spec": SPEC, "version": version,
        "issued_at": _iso(issued), "expires_at": _iso(issued + timedelta(days=valid_days)),
        "signers": list(seen.values()),
        "declaration_issuers": [dict(e) for e in declaration_issuers],
        "revocation": {k: sorted(set(v)) for k, v in (revocation or {}).items() if v},
    }
    if valuesets:
        body["valuesets"] = dict(valuesets)
    if policy:
        problem = policy_problem(dict(policy))
        if problem:
            raise BundleBuildError(f"policy: {problem}")
        body["policy"] = dict(policy)
    if site:
        body["site"] = site
    return body


def sign(body: Mapping[str, Any], key) -> bytes:
    """The signed bundle's bytes (what the file holds and the retained topic carries)."""
    return signing.sign_bytes(body, BINDING, key)


def unsigned_of(data: bytes, where: str = "bundle") -> dict:
    """A bundle payload read from JSON bytes (signed or not; an old signature is dropped)."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleBuildError(f"{where}: not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("type") != TYPE:
        raise BundleBuildError(f"{where}: not a {TYPE}")
    body.pop(signing.SIG_FIELD, None)
    return body


def publish(data: bytes, broker: str, *, site: str | None = None, username: str | None = None,
            password: str | None = None, ca_file: str | None = None, timeout: float = 15.0) -> str:
    """Publish the signed bundle retained (QoS 1) on the fleet or site topic; returns the topic.

    Raises KioskOSError when the broker cannot be reached or does not acknowledge in time."""
    from urllib.parse import urlsplit

    import paho.mqtt.client as mqtt

    from kiosk.errors import KioskOSError

    url = urlsplit(broker)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise BundleBuildError(f"--broker {broker!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    if url.username or url.password:
        raise BundleBuildError("--broker: credentials do not belong in the URL (use --username, --password-file)")
    try:
        port = url.port or (8883 if url.scheme == "mqtts" else 1883)
    except ValueError:
        raise BundleBuildError(f"--broker {broker!r}: bad port") from None
    topic = topics.bundle_topic(site)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"trust-publish-{int(time.time())}")
    if url.scheme == "mqtts":
        client.tls_set(ca_certs=ca_file)
    if username:
        client.username_pw_set(username, password)
    try:
        client.connect(url.hostname, port, keepalive=30)
    except OSError as exc:
        raise KioskOSError(f"{url.hostname}:{port}: cannot connect ({exc.strerror or exc})") from None
    client.loop_start()
    try:
        info = client.publish(topic, data, qos=1, retain=True)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise KioskOSError(f"{url.hostname}:{port}: the broker did not acknowledge the bundle within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    return topic
