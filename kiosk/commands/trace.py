"""``kiosk trace keygen|request|collect|import``: contact tracing for the health authority (docs/tracing.md).

::

    kiosk trace keygen DIR
    kiosk trace request --keys DIR --broker URL --from WHEN [--to WHEN]
                        (--venue ID ... | --district NAME [--ward NAME] | --case-id-number N | --case-code FILE
                         | --case-identity TEXT) [--registry FILE] [--site SITE] [--margin 30] [--out FILE]
    kiosk trace collect --request FILE|ID --keys DIR --registry FILE [--wait 600] [--settle 30] [--tz ZONE]
                        [--out PREFIX]
    kiosk trace import --keys DIR --registry FILE OTHER-STORE

``request`` keeps the request in the desk's answer store (``DIR/trace-answers.sqlite3``)
and opens a persistent broker session subscribed to its answers before it publishes,
so ``collect`` (the same session) receives every answer the kiosks sent meanwhile.
``collect`` keeps each answer in the store before the broker may forget it, sends a
case's next round to the other entrances of the venues the case visited, and writes
``PREFIX.csv`` and ``PREFIX.xlsx`` (the F1 list from everything kept, owner-only
files, never replaced by a shorter list). It says what is new and names the
kiosks still silent; exit 1 while some are, so a script can run it again.
``import`` takes the answers another machine with the same keys collected.
"""

from __future__ import annotations

import json
import sys
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

    c = sub.add_parser("collect", help="collect the answers (kept as they arrive) and write the F1 list")
    _broker_arguments(c, required=False)
    c.add_argument("--request", required=True, help="the file kiosk trace request wrote, or the request's id")
    c.add_argument("--keys", required=True, help="the folder kiosk trace keygen wrote (it holds the answer store)")
    c.add_argument("--registry", required=True, help="fleet registry: whose key verifies which kiosk's answer")
    c.add_argument("--wait", type=float, default=600.0,
                   help="seconds to wait for silent kiosks (default 600; 0 = only rebuild the list from the store)")
    c.add_argument("--settle", type=float, default=30.0,
                   help="seconds after finding a case's check-in before asking the venue's other entrances while "
                        "some kiosks are still silent (default 30)")
    c.add_argument("--tz", default="", help="time zone of the list, e.g. Asia/Ho_Chi_Minh (default: this machine's)")
    c.add_argument("--out", help="output prefix (default f1-<id>): writes PREFIX.csv and PREFIX.xlsx")

    i = sub.add_parser("import", help="take the answers another machine with the same keys collected")
    i.add_argument("store", help="that machine's trace-answers.sqlite3 (a copy)")
    i.add_argument("--keys", required=True, help="the folder kiosk trace keygen wrote (it holds the answer store)")
    i.add_argument("--registry", required=True, help="fleet registry: every imported answer is verified again")


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
        return {"keygen": _keygen, "request": _request, "collect": _collect, "import": _import}[args.action](args)
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
    """The request's persistent session: MQTT 5 (the broker says when another machine takes it over)."""
    import paho.mqtt.client as mqtt

    from kiosk.wire.broker import make_client

    mc = SimpleNamespace(username=args.username, password_file=args.password_file, ca_file=args.ca_file,
                         cert_file=args.cert_file, key_file=args.key_file, reconnect_min_seconds=1.0,
                         reconnect_max_seconds=30.0)
    return lambda: make_client(client_id, broker, mc, protocol=mqtt.MQTTv5)


def _request(args) -> int:
    from kiosk.authority import keys as authority_keys
    from kiosk.authority import registry, requests
    from kiosk.authority.session import publish_request, request_bytes
    from kiosk.authority.store import AnswerStore, path_for
    from kiosk.commands.export import local_time
    from kiosk.wire import trace as P

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
    data = request_bytes(request)
    store = AnswerStore(path_for(args.keys))
    try:
        store.add_request(request, topic, args.broker, client_id)  # kept before it can be answered
        publish_request(_client_factory(args, client_id, args.broker), topic, data, rid)
        store.mark_published(rid)
    finally:
        store.close()
    out = Path(args.out or f"trace-{rid}.json")
    out.write_text(json.dumps({"topic": topic, "broker": args.broker, "client_id": client_id, "request": request},
                              ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"kiosk trace request: {request['kind']} request {rid} published on {topic}; collect with: "
          f"kiosk trace collect --request {out} --keys {args.keys} --registry {args.registry or 'REGISTRY'}")
    return 0


def _load_request(args, store):
    """The request to collect: from its file (kept in the store if new here) or by its id in the store."""
    from kiosk.wire import trace as P

    path = Path(args.request)
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            request, topic, client_id = saved["request"], saved["topic"], saved["client_id"]
            rid = request["id"]
        except OSError as exc:
            raise UsageError(f"--request {args.request}: cannot read ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"--request {args.request}: not a request file written by kiosk trace request") from None
        # A request file exists only once the broker took the request: it was published.
        from kiosk.wire import signing

        store.add_request(request, topic, saved.get("broker") or "", client_id, published=signing.iso())
        stored = store.request(rid)
    else:
        stored = store.request(args.request) if P.ID_RE.match(args.request.ljust(32, "0")) else None
        if stored is None:
            raise UsageError(f"--request {args.request}: no such file, and no request with that id in "
                             f"{store.path}")
    if stored.case_request:  # a round's id: collect the whole case
        stored = store.request(stored.case_request) or stored
    return stored


def _zone(name: str):
    """The list's time zone and its label."""
    if not name:
        local = datetime.now().astimezone()
        offset = local.strftime("%z")
        return local.tzinfo, f"UTC{offset[:3]}:{offset[3:]}"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz {name!r}: not a time zone name like Asia/Ho_Chi_Minh") from None


def _collect(args) -> int:
    from kiosk.authority import f1, registry
    from kiosk.authority import keys as authority_keys
    from kiosk.authority.investigation import Investigation
    from kiosk.authority.session import SessionLock, collect
    from kiosk.authority.store import AnswerStore, path_for
    from kiosk.authority.summary import plural, report

    zone, zone_name = _zone(args.tz)
    keys = authority_keys.load(args.keys)
    rows_registry = registry.load(args.registry)
    store = AnswerStore(path_for(args.keys))
    try:
        main = _load_request(args, store)
        broker = args.broker or main.broker
        inv = Investigation(store, main, rows_registry, keys)
        before = {f1.row_key(r) for r in inv.rows_raw()}
        new_answers = [0]

        def progress(a, state):
            col = inv.collectors.get(a.request_id)
            if state not in ("new", "upgraded") or col is None or (a.site, a.device) not in col.required:
                return  # known already, or a second round's padding entry (that kiosk was asked about nothing)
            new_answers[0] += 1
            number = next((r.round for r in list(inv.rounds) if r.id == a.request_id), None)
            where = f"round {number}: " if number else ""
            print(f"  {where}{a.site}/{a.device}: {a.outcome}" + (
                f" ({a.reason})" if a.outcome != "answered" else f", {plural(len(a.records), 'record')}"), file=sys.stderr)

        def round_sent(r, pending):
            venues = sorted({inv.venue_of.get((k.site, k.device), "?") for k in inv.rows if k.kid in pending})
            print(f"kiosk trace collect: round {r.round}: asked {plural(len(pending), 'kiosk')} at {', '.join(venues)} "
                  f"(the other entrances where the case checked in) for the visits around the case's check-ins",
                  file=sys.stderr)

        session = None
        if inv.complete():
            print("kiosk trace collect: every kiosk asked has answered: the list is built from the answer store",
                  file=sys.stderr)
        elif args.wait > 0:
            if not broker:
                raise UsageError("--broker is needed (the request file names none)")
            with SessionLock(args.keys, main.id):
                session = collect(inv, _client_factory(args, main.client_id, broker), args.wait, args.settle,
                                  on_answer=progress, on_round=round_sent)
        raw = inv.rows_raw()
        done = report(inv, main, raw, before, new_answers[0], session, zone, zone_name,
                      prefix=args.out or f"f1-{main.id}", keys_dir=args.keys, broker=args.broker or main.broker)
        for line in done.err:
            print(f"kiosk trace collect: {line}", file=sys.stderr)
        for line in done.out:
            print(f"kiosk trace collect: {line}")
        return done.rc
    finally:
        store.close()


def _import(args) -> int:
    from kiosk.authority import keys as authority_keys
    from kiosk.authority import registry
    from kiosk.authority.merge import take_answers
    from kiosk.authority.store import AnswerStore, path_for
    from kiosk.authority.summary import by_reason, plural

    keys = authority_keys.load(args.keys)
    rows = registry.load(args.registry)
    ours = AnswerStore(path_for(args.keys))
    if Path(args.store).resolve() == ours.path.resolve():
        ours.close()
        raise UsageError(f"{args.store} is this machine's own answer store")
    theirs = AnswerStore(args.store, create=False)
    try:
        # every request is verified with the authority's signing key, as a kiosk would
        taken = take_answers(ours, theirs, rows, keys.box, keys.sign.public_key())
    finally:
        theirs.close()
        ours.close()
    said = [f"{plural(taken.requests_new, 'new request')}, {plural(taken.answers_new, 'new answer')} "
            f"of {taken.answers_seen} in {args.store}"]
    if taken.requests_not_believed:
        n = sum(taken.requests_not_believed.values())
        said.append(f"{plural(n, 'request')} not believed ({by_reason(taken.requests_not_believed)})")
    if taken.not_believed:
        n = sum(taken.not_believed.values())
        said.append(f"{plural(n, 'answer')} not believed ({by_reason(taken.not_believed)})")
    print(f"kiosk trace import: {'; '.join(said)}; run kiosk trace collect again to rebuild the F1 list")
    return 1 if taken.not_believed or taken.requests_not_believed else 0
