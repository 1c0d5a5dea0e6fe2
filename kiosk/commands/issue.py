"""``kiosk issue``: keys and signed codes, for authorities, demos and tests.

- ``kiosk issue keygen --out DIR [--alg Ed25519|ES256]``: a declaration issuer's key
  (``DIR/issuer.key.pem``, mode 0600, key and certificate) and the certificate kiosks trust
  (``DIR/issuer.crt.pem``).
- ``kiosk issue declaration --key FILE --status green --valid-hours 24 --subject ID [--png FILE]``:
  prints an ``HD1:`` payload; ``--png`` also writes it as a QR code.
- ``kiosk issue dcc --key FILE --kind vaccination --family ... --given ... --dob ...``: a signed
  EU DCC for demos and tests (needs a document-signer key, e.g. the demo one).
"""

from __future__ import annotations

import secrets
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kiosk.cli import UsageError


def add_arguments(p) -> None:
    sp = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    kg = sp.add_parser("keygen", help="make an issuer key and its certificate")
    kg.add_argument("--out", required=True, metavar="DIR", help="folder for issuer.key.pem and issuer.crt.pem")
    kg.add_argument("--alg", default="Ed25519", choices=("Ed25519", "ES256"), help="signature algorithm (default: %(default)s)")
    kg.add_argument("--name", default="Health-declaration issuer", help="certificate common name")
    kg.add_argument("--days", type=int, default=3650, help="certificate validity in days (default: %(default)s)")
    kg.add_argument("--force", action="store_true", help="overwrite existing key files")

    d = sp.add_parser("declaration", help="issue a signed health-declaration code")
    d.add_argument("--key", required=True, metavar="FILE", help="issuer key file (from keygen)")
    d.add_argument("--status", required=True, choices=("green", "yellow", "red"))
    d.add_argument("--valid-hours", type=float, default=24.0, help="hours the declaration is valid (default: %(default)s)")
    d.add_argument("--subject", required=True, metavar="ID", help="pseudonymous subject id (no names)")
    d.add_argument("--id", metavar="DECLARATION_ID", help="declaration id (default: random)")
    d.add_argument("--declared-at", metavar="ISO-8601", help="declaration time (default: now)")
    d.add_argument("--png", metavar="FILE", help="also write the code as a QR image")

    c = sp.add_parser("dcc", help="issue a signed EU DCC (demos and tests only)")
    c.add_argument("--key", required=True, metavar="FILE", help="document-signer key file (key + certificate PEM)")
    c.add_argument("--kind", default="vaccination", choices=("vaccination", "test", "recovery"))
    c.add_argument("--family", required=True)
    c.add_argument("--given", required=True)
    c.add_argument("--dob", required=True, metavar="YYYY-MM-DD")
    c.add_argument("--days-ago", type=float, default=30.0, help="vaccination/recovery: last dose / first positive test this many days ago")
    c.add_argument("--hours-ago", type=float, default=3.0, help="test: sample taken this many hours ago")
    c.add_argument("--dose", default="2/2", metavar="DN/SD", help="vaccination dose number / series (default: %(default)s)")
    c.add_argument("--positive", action="store_true", help="test: a positive result")
    c.add_argument("--png", metavar="FILE", help="also write the code as a QR image")


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    from kiosk.commands.verify import parse_at

    return parse_at(text)


def _write_png(payload: str, path: str) -> None:
    import segno

    qr = segno.make(payload, error="m", micro=False)
    qr.save(path, scale=8, border=4)
    print(f"wrote {path} (QR version {qr.version}, error correction {qr.error})", file=sys.stderr)


def run(args) -> int:
    from kiosk.issuing.keys import IssuerKey, KeyFileError

    try:
        if args.action == "keygen":
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            key_path, cert_path = out / "issuer.key.pem", out / "issuer.crt.pem"
            if not args.force and (key_path.exists() or cert_path.exists()):
                raise UsageError(f"{key_path} or {cert_path} exists (use --force to replace it)")
            key = IssuerKey.generate(args.alg, common_name=args.name[:64], days=args.days)
            key.save(key_path, cert_path)
            print(f"private key: {key_path} (keep it secret, off the kiosks)")
            print(f"certificate: {cert_path} (add it to the kiosks' [trust] paths)")
            print(f"kid: {key.kid.hex()}  alg: {key.alg}")
            return 0
        key = IssuerKey.load(args.key)
        if args.action == "declaration":
            from kiosk.issuing.declaration import DeclarationError, issue

            declared = _time(args.declared_at)
            try:
                payload = issue(key, status=args.status, declared_at=declared,
                                valid_until=declared + timedelta(hours=args.valid_hours),
                                declaration_id=args.id or "D-" + secrets.token_hex(6).upper(),
                                subject_id=args.subject)
            except DeclarationError as exc:
                raise UsageError(str(exc)) from None
        else:
            from kiosk.issuing.dcc import issue_dcc

            try:
                dn, sd = (int(x) for x in args.dose.split("/"))
            except ValueError:
                raise UsageError(f"--dose {args.dose!r} is not DN/SD, e.g. 2/2") from None
            now = datetime.now(timezone.utc)
            ago = timedelta(days=args.days_ago)
            payload = issue_dcc(key, kind=args.kind, family=args.family, given=args.given, dob=args.dob, at=now,
                                last_dose=now - ago, dn=dn, sd=sd, sample_time=now - timedelta(hours=args.hours_ago),
                                negative=not args.positive, first_positive=now - ago)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    print(payload)
    if args.png:
        _write_png(payload, args.png)
    return 0
