"""``kiosk trust``: the trust authority's bundle tools (keygen, build, sign, verify, publish).

- ``kiosk trust keygen --out DIR``: the authority's Ed25519 key (``DIR/authority.key.pem``,
  mode 0600, kept off the kiosks) and its public key (``DIR/authority.pub.pem``, provisioned on
  every kiosk as ``[trust] authority_key``).
- ``kiosk trust build [--certs PATH]... [--trust-list FILE]... [--declaration-issuers PATH]...
  [--valuesets PATH]... [--revocation FILE]... [--revoke-uvci UVCI]... [--policy FILE]
  [--version N] [--valid-days D] [--site S] [--key FILE] --out FILE``: a bundle, signed when
  ``--key`` is given, else unsigned for ``kiosk trust sign``.
- ``kiosk trust sign --key FILE BUNDLE --out FILE``.
- ``kiosk trust verify --authority-key PUB BUNDLE``: checks it as a kiosk would; prints a summary.
- ``kiosk trust publish --broker URL [--site S] BUNDLE``: retained on ``checkin/v1/trust/bundle``
  (or the site's topic).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kiosk.cli import UsageError
from kiosk.errors import KioskOSError


def add_arguments(p) -> None:
    sp = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    kg = sp.add_parser("keygen", help="make the trust authority's Ed25519 key")
    kg.add_argument("--out", required=True, metavar="DIR", help="folder for authority.key.pem and authority.pub.pem")
    kg.add_argument("--force", action="store_true", help="overwrite an existing key")

    b = sp.add_parser("build", help="build a trust bundle")
    b.add_argument("--certs", action="append", default=[], metavar="PATH",
                   help="document-signer certificates: PEM/DER file or folder (repeatable)")
    b.add_argument("--trust-list", action="append", default=[], metavar="FILE",
                   help="national trust-list export: JSON entries with kid, country and DER certificate (repeatable)")
    b.add_argument("--declaration-issuers", action="append", default=[], metavar="PATH",
                   help="health-declaration issuer certificates: file or folder (repeatable)")
    b.add_argument("--valuesets", action="append", default=[], metavar="PATH",
                   help="EU value-set JSON file or folder (repeatable; none: kiosks use their shipped snapshot)")
    b.add_argument("--revocation", action="append", default=[], metavar="FILE",
                   help="revocation file: JSON by hash type, or '<type> <sha256 hex>' lines (repeatable)")
    b.add_argument("--revoke-uvci", action="append", default=[], metavar="UVCI",
                   help="revoke a DCC by its UVCI text (hashed here; repeatable)")
    b.add_argument("--policy", metavar="FILE", help="venue-policy rules (JSON object of [policy] keys)")
    b.add_argument("--version", type=int, help="bundle version (default: the issue time in seconds)")
    b.add_argument("--valid-days", type=float, default=7.0, help="days until the bundle expires (default: %(default)s)")
    b.add_argument("--site", help="only for this site (default: the whole fleet)")
    b.add_argument("--key", metavar="FILE", help="authority private key (file or credential:NAME): sign at once")
    b.add_argument("--out", required=True, metavar="FILE", help="bundle file to write")

    s = sp.add_parser("sign", help="sign a built bundle")
    s.add_argument("--key", required=True, metavar="FILE", help="authority private key (file or credential:NAME)")
    s.add_argument("bundle", metavar="BUNDLE")
    s.add_argument("--out", required=True, metavar="FILE")

    v = sp.add_parser("verify", help="check a bundle as a kiosk would")
    v.add_argument("--authority-key", required=True, metavar="PUB", help="the authority's public key (PEM)")
    v.add_argument("--site", help="the kiosk's site (for a site bundle)")
    v.add_argument("bundle", metavar="BUNDLE")

    pub = sp.add_parser("publish", help="publish a signed bundle, retained, to the fleet")
    pub.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port or mqtts://host:port")
    pub.add_argument("--site", help="publish on checkin/v1/{site}/trust/bundle instead of the fleet topic")
    pub.add_argument("--username")
    pub.add_argument("--password-file", metavar="FILE", help="broker password (file or credential:NAME)")
    pub.add_argument("--ca", metavar="FILE", help="CA certificate for mqtts://")
    pub.add_argument("--authority-key", metavar="PUB", help="check the bundle's signature before publishing")
    pub.add_argument("bundle", metavar="BUNDLE")


def _read(path: str) -> bytes:
    from kiosk.trust.store import TrustError, read_capped
    from kiosk.trust.bundle import MAX_BUNDLE_BYTES

    try:
        return read_capped(path, MAX_BUNDLE_BYTES, what="trust bundle")
    except TrustError as exc:
        raise UsageError(str(exc)) from None


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None


def _verify(data: bytes, pub: str, site: str | None):
    from kiosk.wire import signing
    from kiosk.trust.bundle import TrustKeeper, load_authority_key

    from kiosk.trust.store import TrustError

    try:
        ring = load_authority_key(pub)
    except (signing.SigningKeyError, TrustError) as exc:
        raise UsageError(str(exc)) from None
    keeper = TrustKeeper(ring, site=site)
    return keeper, keeper.offer(data, source="verify", persist=False)


def run(args) -> int:
    from kiosk.wire import signing
    from kiosk.issuing import bundle as tools

    try:
        if args.action == "keygen":
            out = Path(args.out)
            key_path, pub_path = out / "authority.key.pem", out / "authority.pub.pem"
            if key_path.exists() and not args.force:
                raise UsageError(f"{key_path} exists (use --force to replace it)")
            key = signing.generate_key()
            signing.write_private_key(key_path, key)
            signing.write_public_key(pub_path, key)
            print(f"private key: {key_path} (keep it offline, off the kiosks)")
            print(f"public key: {pub_path} (every kiosk's [trust] authority_key)")
            print(f"kid: {signing.kid_of(key.public_key())}")
            return 0
        if args.action == "build":
            signers = [e for p in args.certs for e in tools.certificates_in(p)]
            signers += [e for p in args.trust_list for e in tools.trust_list_entries(p)]
            issuers = [e for p in args.declaration_issuers for e in tools.certificates_in(p)]
            valuesets: dict = {}
            for p in args.valuesets:
                valuesets.update(tools.valuesets_in(p))
            revocation: dict[str, list[str]] = {}
            for p in args.revocation:
                for kind, hashes in tools.revocations_in(p).items():
                    revocation.setdefault(kind, []).extend(hashes)
            revocation.setdefault("uvci", []).extend(tools.uvci_hash(u) for u in args.revoke_uvci)
            policy = None
            if args.policy:
                try:
                    policy = json.loads(_read(args.policy))
                except ValueError as exc:
                    raise UsageError(f"{args.policy}: not JSON: {exc}") from None
            body = tools.build(signers=signers, declaration_issuers=issuers, valuesets=valuesets or None,
                               revocation=revocation, policy=policy, version=args.version,
                               valid_days=args.valid_days, site=args.site)
            if args.key:
                data = tools.sign(body, signing.load_private_key(args.key))
            else:
                data = json.dumps(body, indent=1, ensure_ascii=False).encode()
            _write(args.out, data)
            print(f"bundle version {body['version']}: {len(body['signers'])} signers, "
                  f"{len(body['declaration_issuers'])} declaration issuers, "
                  f"{sum(len(v) for v in body['revocation'].values())} revoked, "
                  f"{'signed' if args.key else 'unsigned'} -> {args.out}")
            return 0
        if args.action == "sign":
            body = tools.unsigned_of(_read(args.bundle), args.bundle)
            _write(args.out, tools.sign(body, signing.load_private_key(args.key)))
            print(f"signed bundle version {body.get('version')} -> {args.out}")
            return 0
        if args.action == "verify":
            keeper, offered = _verify(_read(args.bundle), args.authority_key, args.site)
            line = {"ok": offered.ok, "reason": offered.reason, "version": offered.version}
            if offered.ok:
                store = keeper.current()
                line.update(issued_at=signing.iso(store.issued_at), expires_at=signing.iso(store.expires_at),
                            signers=len(store), revoked=len(store.revocations), stale=keeper.stale,
                            valuesets=sorted(store.valuesets or ()), policy=store.policy, site=store.site)
            else:
                line["detail"] = offered.detail
            print(json.dumps(line, ensure_ascii=False))
            return 0 if offered.ok else 1
        # publish
        data = _read(args.bundle)
        if args.authority_key:
            _, offered = _verify(data, args.authority_key, args.site)
            if not offered.ok:
                raise UsageError(f"{args.bundle}: refused ({offered.reason}: {offered.detail}); not published")
        password = None
        if args.password_file:
            from kiosk.secrets import SecretError, read_secret

            try:
                password = read_secret(args.password_file)
            except SecretError as exc:
                raise UsageError(str(exc)) from None
        topic = tools.publish(data, args.broker, site=args.site, username=args.username, password=password,
                              ca_file=args.ca)
        print(f"published {len(data)} bytes, retained, on {topic}", file=sys.stderr)
        return 0
    except (tools.BundleBuildError, signing.SigningKeyError) as exc:
        raise UsageError(str(exc)) from None
    except KioskOSError as exc:  # the broker: not the operator's typing, but one line all the same
        print(f"kiosk trust: {exc}", file=sys.stderr)
        return 1
