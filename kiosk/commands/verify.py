"""``kiosk verify [--config F] [--trust PATH]... [--at ISO-8601] [PAYLOAD ...]``: verdicts as JSON lines.

One JSON object per payload (payloads one per line on standard input when
none are given)::

    {"format": "pc-covid", "valid": true, "signed": false, "verdict": "accept", "reason": "ok",
     "detail": "unsigned: only the format of the PC-Covid QR was checked", "facts": {...}}

``valid`` is technical validity; ``verdict``/``reason`` come after the venue
policy (``--config``), or a policy that accepts every valid code. ``signed``
false means no signature was checked: only the format. Exit 0 when every code
is accepted, 1 when any is rejected, 2 for usage or configuration errors. No
names, birth dates or ID numbers are printed.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from kiosk.cli import UsageError

# Facts that are about the certificate, not the person: safe to print.
_PRINTABLE_FACTS = ("type", "issued_at", "expires_at", "issuer_country", "issuer", "dn", "sd", "dt", "mp", "ma", "sc",
                    "tr", "tt", "fr", "df", "du", "co", "valueset_unknown", "status", "declared_at", "valid_until",
                    "declaration_id", "issuer_kid")


def add_arguments(p) -> None:
    p.add_argument("--config", help="kiosk config: its trust paths and venue policy")
    p.add_argument("--trust", action="append", default=[], metavar="PATH",
                   help="trusted signers: PEM/DER certificate, folder of them, or trust-list JSON (repeatable)")
    p.add_argument("--bundle", metavar="FILE", help="signed trust bundle (needs --authority-key or the config's)")
    p.add_argument("--authority-key", metavar="PUB", help="the trust authority's public key (PEM) for --bundle")
    p.add_argument("--at", metavar="ISO-8601", help="validation clock (default: now), e.g. 2021-11-20T08:00:00Z")
    p.add_argument("payloads", nargs="*", metavar="PAYLOAD", help="code contents; none = one per line on stdin")


def parse_at(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or offset; none = UTC)."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO 8601 time (e.g. 2021-11-20T08:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _stdin_payloads():
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line:
            yield line


def run(args) -> int:
    from kiosk import config as config_mod
    from kiosk.wire import signing
    from kiosk.door.decide.policy import Policy
    from kiosk.trust.revoked import RevocationFileError
    from kiosk.trust.store import TrustError, TrustStore
    from kiosk.trust.bundle import TrustKeeper, load_authority_key
    from kiosk.door.verify.verifier import Verifier

    at = parse_at(args.at) if args.at else None
    paths: list[str] = []
    policy = Policy()
    skew = 300.0
    bundle, authority_key, max_age, site = args.bundle, args.authority_key, 0, None
    try:
        cfg = None
        if args.config:
            cfg = config_mod.load(args.config)
            paths += [str(cfg.resolve(p)) for p in cfg.trust.paths]
            skew = cfg.policy.clock_skew_seconds
            bundle = bundle or (str(cfg.resolve(cfg.trust.bundle)) if cfg.trust.bundle else None)
            authority_key = authority_key or (str(cfg.resolve(cfg.trust.authority_key)) if cfg.trust.authority_key else None)
            max_age, site = cfg.trust.max_age_hours, cfg.device.site or None
        paths += args.trust
        trust = TrustStore.load(paths) if paths else TrustStore.empty()
        if bundle:
            if not authority_key:
                raise UsageError("--bundle needs --authority-key (or [trust] authority_key in --config)")
            # No state_dir: checking codes by hand never changes what a kiosk keeps.
            trust = TrustKeeper(load_authority_key(authority_key),
                                max_age_hours=max_age, fallback=trust, site=site)
            offered = trust.load_file(bundle)
            if not offered.ok:
                raise UsageError(f"{bundle}: trust bundle refused ({offered.reason}: {offered.detail})")
        else:
            trust = TrustKeeper.holding(trust)
        if cfg is not None:
            policy = Policy.from_config(cfg.policy, resolve=lambda p: cfg.resolve(p), trust=trust)
    except (TrustError, RevocationFileError, signing.SigningKeyError) as exc:
        raise UsageError(str(exc)) from None
    verifier = Verifier(trust, clock_skew_seconds=skew)
    rejected = False
    out = sys.stdout
    for payload in (args.payloads or _stdin_payloads()):
        now = at or datetime.now(timezone.utc)
        check = verifier.check(payload, at=now)
        verdict, reason = policy.decide(check, now)
        rejected |= verdict != "accept"
        line = {"format": check.format, "valid": check.valid, "signed": check.signed, "verdict": verdict,
                "reason": reason, "detail": check.detail}
        facts = {k: check.facts[k] for k in _PRINTABLE_FACTS if k in check.facts}
        if facts:
            line["facts"] = facts
        out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        out.flush()
    return 1 if rejected else 0
