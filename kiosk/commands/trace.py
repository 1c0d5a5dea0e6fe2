"""``kiosk trace keygen|request|collect``: contact tracing for the health authority (docs/tracing.md).

::

    kiosk trace keygen DIR
    kiosk trace request --keys DIR --broker URL --from WHEN [--to WHEN]
                        (--venue ID ... | --district NAME [--ward NAME] | --case-id-number N | --case-code FILE
                         | --case-identity TEXT) [--registry FILE] [--site SITE] [--margin 30] [--out FILE]
    kiosk trace collect --request FILE --keys DIR --registry FILE [--wait 600] [--out PREFIX]

``request`` opens a persistent broker session subscribed to the request's answers
before it publishes, so ``collect`` (the same session) receives every answer the
kiosks sent meanwhile. ``collect`` writes ``PREFIX.csv`` and ``PREFIX.xlsx`` (the F1
list, owner-only files) and names the kiosks that did not answer; exit 1 when
some are missing, so a script can ask again.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from kiosk.cli import UsageError


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    k = sub.add_parser("keygen", help="make the authority's signing and encryption key pairs")
    k.add_argument("directory", help="folder for the keys (private files are written 0600)")
    k.add_argument("--force", action="store_true", help="replace existing keys")

    r = sub.add_parser("request", help="sign and publish a trace request")
    _broker_arguments(r)
    r.add_argument("--keys", required=True, help="the folder kiosk trace keygen wrote")
    r.add_argument("--registry", help="fleet registry (needed for a case: its identity is sealed to each kiosk)")
    r.add_argument("--site", help="ask only this site's kiosks (default: the whole fleet)")
    r.add_argument("--from", dest="start", required=True, metavar="WHEN", help="window start, local date-time")
    r.add_argument("--to", dest="end", metavar="WHEN", help="window end, local date-time (default: now)")
    r.add_argument("--venue", action="append", default=[], help="venue id (repeat for several)")
    r.add_argument("--district", default="", help="district name or code as the kiosks' [venue] district")
    r.add_argument("--ward", default="", help="ward name or code as the kiosks' [venue] ward")
    r.add_argument("--case-id-number", action="append", default=[], help="the case's CCCD/CMND/passport number")
    r.add_argument("--case-code", action="append", default=[], help="file holding the text of the case's QR code")
    r.add_argument("--case-identity", action="append", default=[], help="a normalized identity, e.g. person:TRAN|THI<BINH|1985-03-04")
    r.add_argument("--trust", action="append", default=[], help="trusted signers, to read an EU DCC given as --case-code")
    r.add_argument("--margin", type=float, default=30.0, help="co-presence margin in minutes (default 30)")
    r.add_argument("--include-rejected", action="store_true", help="also visitors the kiosk did not let in")
    r.add_argument("--expires", type=float, default=24.0, help="hours the request stays valid (default 24)")
    r.add_argument("--out", help="request file for collect (default trace-<id>.json)")

    c = sub.add_parser("collect", help="collect the answers and write the F1 list")
    _broker_arguments(c, required=False)
    c.add_argument("--request", required=True, help="the file kiosk trace request wrote")
    c.add_argument("--keys", required=True, help="the folder kiosk trace keygen wrote")
    c.add_argument("--registry", required=True, help="fleet registry: whose key verifies which kiosk's answer")
    c.add_argument("--wait", type=float, default=600.0, help="seconds to wait for missing kiosks (default 600)")
    c.add_argument("--out", help="output prefix (default f1-<id>): writes PREFIX.csv and PREFIX.xlsx")


def _broker_arguments(p, required: bool = True) -> None:
    p.add_argument("--broker", required=required, help="broker URL, mqtt://host:port or mqtts://host:port")
    p.add_argument("--username", default="", help="broker user name")
    p.add_argument("--password-file", default="", help="broker password: a file or credential:NAME")
    p.add_argument("--ca-file", default="", help="CA certificate for TLS")
    p.add_argument("--cert-file", default="", help="client certificate for TLS")
    p.add_argument("--key-file", default="", help="client key for TLS")


def run(args) -> int:
    from kiosk.errors import KioskError

    try:
        return {"keygen": _keygen, "request": _request, "collect": _collect}[args.action](args)
    except KioskError as exc:
        print(f"kiosk trace {args.action}: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # a broker URL or TLS option
        print(f"kiosk trace {args.action}: {exc}", file=sys.stderr)
        return 2


def _keygen(args) -> int:
    from kiosk.authority import keys

    k = keys.keygen(args.directory, force=args.force)
    d = Path(args.directory)
    print(f"kiosk trace keygen: signing key {k.kid} in {d / keys.SIGN} (private, 0600); "
          f"give every kiosk {d / keys.SIGN_PUB} as [tracing] authority_key. "
          f"Answers open with {d / keys.BOX} (private, 0600): keep it offline when not collecting.")
    return 0


def _client_factory(args, client_id: str, broker: str):
    from kiosk.wire.broker import make_client

    mc = SimpleNamespace(username=args.username, password_file=args.password_file, ca_file=args.ca_file,
                         cert_file=args.cert_file, key_file=args.key_file, reconnect_min_seconds=1.0,
                         reconnect_max_seconds=30.0)
    return lambda: make_client(client_id, broker, mc, clean=False)


def _request(args) -> int:
    from kiosk.authority import keys as authority_keys
    from kiosk.authority import registry, requests
    from kiosk.commands.export import local_time
    from kiosk.tracing import protocol as P

    start = local_time(args.start, "--from")
    end = local_time(args.end, "--to", end=True) if args.end else datetime.now(timezone.utc)
    keys = authority_keys.load(args.keys)
    topic = P.site_topic(args.site) if args.site else P.FLEET_TOPIC
    ttl = args.expires * 3600
    identities = [requests.identity_of_id_number(n) for n in args.case_id_number] + list(args.case_identity)
    if args.case_code:
        trust = None
        if args.trust:
            from kiosk.trust.store import TrustStore

            trust = TrustStore.load(args.trust)
        for f in args.case_code:
            try:
                text = Path(f).read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--case-code {f}: cannot read ({exc.strerror})") from None
            identities.append(requests.identity_of_code(text, trust))
    if identities:
        if args.venue or args.district or args.ward:
            raise UsageError("a request is by place or by case, not both")
        if not args.registry:
            raise UsageError("a case request needs --registry: the identity is sealed to each kiosk's key")
        kiosks = registry.active(registry.load(args.registry), args.site)
        request = requests.case_request(keys, topic, start, end, identities, kiosks, args.margin, ttl,
                                        args.include_rejected)
    else:
        request = requests.place_request(keys, topic, start, end, args.venue, args.district, args.ward, ttl,
                                         args.include_rejected)
    rid = request["id"]
    client_id = f"kiosk-trace-{rid[:20]}"
    data = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > P.REQUEST_MAX_BYTES:
        raise UsageError(f"the request is {len(data)} bytes, over the kiosks' {P.REQUEST_MAX_BYTES}: ask per --site")
    out = Path(args.out or f"trace-{rid}.json")
    out.write_text(json.dumps({"topic": topic, "broker": args.broker, "client_id": client_id, "request": request},
                              ensure_ascii=False, indent=1), encoding="utf-8")
    _publish(_client_factory(args, client_id, args.broker), topic, data, rid)
    print(f"kiosk trace request: {request['kind']} request {rid} published on {topic}; "
          f"collect with: kiosk trace collect --request {out} --keys {args.keys} --registry REGISTRY")
    return 0


def _publish(factory, topic: str, data: bytes, rid: str, timeout_s: float = 20.0) -> None:
    """Subscribe the answers on a persistent session, then publish the request (QoS 1), then leave."""
    from kiosk.errors import KioskOSError
    from kiosk.tracing import protocol as P

    client, address = factory()
    subscribed, published = threading.Event(), threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(P.answer_filter(rid), qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p=None: subscribed.set()
    client.on_publish = lambda c, u, mid, rc=None, p=None: published.set()
    client.connect_async(address.host, address.port)
    client.loop_start()
    try:
        if not subscribed.wait(timeout_s):
            raise KioskOSError(f"cannot reach the broker at {address} within {timeout_s:.0f} s; nothing was sent")
        client.publish(topic, data, qos=1, retain=False)
        if not published.wait(timeout_s):
            raise KioskOSError(f"the broker at {address} did not acknowledge the request")
    finally:
        client.disconnect()
        client.loop_stop()


def _collect(args) -> int:
    from kiosk.authority import f1, registry
    from kiosk.authority import keys as authority_keys
    from kiosk.authority.collect import Collector, collect, summary

    try:
        saved = json.loads(Path(args.request).read_text(encoding="utf-8"))
        request, topic, client_id = saved["request"], saved["topic"], saved["client_id"]
    except OSError as exc:
        raise UsageError(f"--request {args.request}: cannot read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"--request {args.request}: not a request file written by kiosk trace request") from None
    broker = args.broker or saved.get("broker")
    if not broker:
        raise UsageError("--broker is needed (the request file names none)")
    keys = authority_keys.load(args.keys)
    collector = Collector(request, topic, registry.load(args.registry), keys.box)

    def progress(a):
        print(f"  {a.site}/{a.device}: {a.outcome}" + (f" ({a.reason})" if a.outcome != "answered" else
                                                       f", {len(a.records)} records"), file=sys.stderr)

    collect(collector, _client_factory(args, client_id, broker), args.wait, on_answer=progress)
    rows = collector.f1()
    prefix = args.out or f"f1-{request['id']}"
    csv_path = f1.write_csv(rows, f"{prefix}.csv")
    xlsx_path = f1.write_xlsx(rows, f1.kiosk_rows(collector), f"{prefix}.xlsx")
    s = summary(collector)
    print(f"kiosk trace collect: {s['answered']} of {s['expected']} kiosks answered"
          + (f", refused: {s['refused']}" if s["refused"] else "")
          + f"; {len(rows)} rows written to {csv_path} and {xlsx_path}")
    if s["not_believed"]:
        print(f"kiosk trace collect: messages not believed: {s['not_believed']}", file=sys.stderr)
    if s["missing"]:
        print(f"kiosk trace collect: not answered: {', '.join(s['missing'])}", file=sys.stderr)
        return 1
    return 0
