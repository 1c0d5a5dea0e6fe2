"""Signed trace requests: by place (venues, a district or a ward) and window, or by a case's identity.

A case request seals the case's identities to each addressed kiosk's own key
(the X25519 form of its registered device key), one entry per kiosk: the
identity never crosses the broker in clear, no kiosk can read another's entry,
and the authority never needs a kiosk's pseudonym key. See docs/tracing.md for
the alternatives and why this one.

A contacts request is a case's next round (:mod:`kiosk.authority.rounds`): the
case's check-ins at a venue, sealed to each other kiosk of that venue, so the
other entrances report who came in around them. It goes to every kiosk the case
request addressed, each entry padded to one length: an observer of the broker
cannot tell which kiosks, venues or times it is about.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Iterable

from kiosk.wire import signing
from kiosk.errors import KioskValueError
from kiosk.wire import trace as P
from kiosk.authority.keys import AuthorityKeys
from kiosk.authority.registry import RegisteredKiosk


class RequestError(KioskValueError):
    """A request that cannot be made as asked; the message names the option."""


def identity_of_id_number(number: str) -> str:
    """The normalized identity the kiosks' code plug-ins give a Vietnamese ID number or a passport."""
    n = number.strip().upper()
    if re.fullmatch(r"\d{12}", n):
        return f"vn-id:{n}"
    if re.fullmatch(r"\d{9}", n):
        return f"vn-cmnd:{n}"
    if re.fullmatch(r"[A-Z][A-Z0-9]{5,11}", n):
        return f"passport:{n}"
    raise RequestError(f"--case-id-number {number!r}: not a 12-digit CCCD, 9-digit CMND or passport number")


def identity_of_code(text: str, trust=None) -> str:
    """The identity a kiosk would compute from the case's own QR code (the same plug-ins)."""
    from kiosk.trust.store import TrustStore
    from kiosk.door.verify.verifier import Verifier

    check = Verifier(trust or TrustStore()).check(text.strip())
    if not check.identity:
        raise RequestError(f"--case-code: no identity in this {check.format} code ({check.reason}); "
                           "for an EU DCC pass --trust, or give --case-identity")
    return check.identity


def _base(kind: str, keys: AuthorityKeys, start: datetime, end: datetime, ttl_s: float,
          include_rejected: bool) -> dict:
    if end <= start:
        raise RequestError("--to is not after --from")
    body = {"v": P.VERSION, "id": uuid.uuid4().hex, "kind": kind, "from": signing.iso(start), "to": signing.iso(end),
            "verdicts": ["accept", "reject"] if include_rejected else ["accept"],
            "reply_key": P.b64(bytes(keys.box.public_key))}
    return signing.stamp(body, ttl_s=ttl_s)


PAD_STEP = 64  # entry lengths are rounded up to this, so two rounds' sizes say little about their contents


def place_request(keys: AuthorityKeys, topic: str, start: datetime, end: datetime, venues: Iterable[str] = (),
                  district: str = "", ward: str = "", ttl_s: float = 86400.0, include_rejected: bool = False) -> dict:
    """Who was at these venues (or in this district / ward) between ``start`` and ``end``: signed for ``topic``."""
    venues = list(venues)
    if not venues and not district and not ward:
        raise RequestError("name --venue, --district or --ward (or give a case)")
    body = _base(P.PLACE, keys, start, end, ttl_s, include_rejected)
    body.update(venues=venues, district=district, ward=ward)
    return signing.sign(body, topic, keys.sign)


def case_request(keys: AuthorityKeys, topic: str, start: datetime, end: datetime, identities: Iterable[str],
                 kiosks: Iterable[RegisteredKiosk], margin_minutes: float = P.DEFAULT_MARGIN_MINUTES,
                 ttl_s: float = 86400.0, include_rejected: bool = False) -> dict:
    """Where was this case between ``start`` and ``end``, and who was there within the margin: signed for ``topic``."""
    ids = list(dict.fromkeys(identities))
    if not ids:
        raise RequestError("a case request needs --case-id-number, --case-code or --case-identity")
    if len(ids) > P.MAX_IDENTITIES:
        raise RequestError(f"at most {P.MAX_IDENTITIES} identities per case")
    if not 0 <= margin_minutes <= P.MAX_MARGIN_MINUTES:
        raise RequestError(f"--margin must be from 0 to {P.MAX_MARGIN_MINUTES:.0f} minutes")
    kiosks = [k for k in kiosks if not k.revoked]
    if not kiosks:
        raise RequestError("no kiosk to address (the registry has no active kiosk for this topic)")
    body = _base(P.CASE, keys, start, end, ttl_s, include_rejected)
    entry = {"request": body["id"], "identities": ids}
    body["margin_minutes"] = float(margin_minutes)
    body["case"] = {k.kid: P.seal(entry, P.box_public_key(k.public_key)) for k in kiosks}
    return signing.sign(body, topic, keys.sign)


def contacts_request(keys: AuthorityKeys, topic: str, case: dict, kiosks: Iterable[RegisteredKiosk],
                     visits: dict[str, list[str]], ttl_s: float = 86400.0) -> dict:
    """The next round of ``case``: each kiosk (by kid) in ``visits`` is asked about those case check-ins (UTC).

    Every kiosk in ``kiosks`` (those the case request addressed) gets an entry, empty when it is not
    asked about anything, and all entries are padded to one length. The window, verdicts and margin
    are the case request's.
    """
    kiosks = [k for k in kiosks if not k.revoked]
    if not kiosks:
        raise RequestError("no kiosk to address (the registry has no active kiosk for this topic)")
    too_many = [kid for kid, times in visits.items() if len(times) > P.MAX_CASE_VISITS]
    if too_many:
        raise RequestError(f"more than {P.MAX_CASE_VISITS} check-ins of the case at one venue: ask per --site "
                           "or with a shorter window")
    body = _base(P.CONTACTS, keys, signing.parse_iso(case["from"]), signing.parse_iso(case["to"]), ttl_s,
                 "reject" in case.get("verdicts", []))
    body["margin_minutes"] = float(case.get("margin_minutes", P.DEFAULT_MARGIN_MINUTES))
    entries = {k.kid: {"request": body["id"], "visits": sorted(visits.get(k.kid, []))} for k in kiosks}
    longest = max(P.sealed_size(e) for e in entries.values())
    pad = -(-longest // PAD_STEP) * PAD_STEP
    body["case"] = {k.kid: P.seal(entries[k.kid], P.box_public_key(k.public_key), pad_to=pad) for k in kiosks}
    return signing.sign(body, topic, keys.sign)
