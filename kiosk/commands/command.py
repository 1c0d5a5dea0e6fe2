"""``kiosk command``: the centre's signed commands to one kiosk (docs/mqtt.md ``cmd/{name}``).

- ``kiosk command keygen --out FILE``: the centre's command key (FILE, mode 0600) and the public
  key every kiosk is provisioned with (``FILE`` with ``.pub.pem``, for ``[mqtt] centre_key``).
- ``kiosk command --key FILE --broker URL --site S --device D NAME [PAYLOAD] [--wait SECONDS]``:
  signs ``{"id", "name", "body", "iat", "nonce"}`` for ``checkin/v1/S/D/cmd/NAME`` with the
  centre key, publishes it (QoS 1, not retained) and, with ``--wait``, prints the kiosk's signed
  answer from ``.../cmd-result`` (checked with ``--kiosk-key`` or the fleet registry's ``--registry``).

Exit codes: 0 sent (and, with --wait, answered ``ok``), 1 refused, no answer or broker
unreachable, 2 bad arguments or key files. Errors are one line.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from pathlib import Path

from kiosk.cli import UsageError

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_SEGMENT = re.compile(r"^[^/+#\s]{1,64}$")


def add_arguments(p) -> None:
    from kiosk.commands.monitor import add_broker_arguments

    p.add_argument("name", metavar="NAME", help="the command: reload-trust, notice (or keygen: make the centre key)")
    p.add_argument("payload", metavar="PAYLOAD", nargs="?", default="",
                   help="the command's body: the notice text ('' clears it); ignored by reload-trust")
    p.add_argument("--key", metavar="FILE", help="the centre's private key: a file or credential:NAME")
    p.add_argument("--site", help="the kiosk's [device] site")
    p.add_argument("--device", help="the kiosk's [device] id")
    p.add_argument("--json", action="store_true", help="PAYLOAD is a JSON value, not text")
    p.add_argument("--expires-in", type=float, metavar="SECONDS",
                   help="the kiosk refuses the command after this many seconds (besides its own age limit)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for the kiosk's cmd-result and print it (default: do not wait)")
    p.add_argument("--kiosk-key", metavar="FILE", help="the kiosk's public key (device-key.pub.pem): check its answer")
    p.add_argument("--registry", metavar="FILE", help="the fleet registry (kiosk fleet): check the answer with the "
                                                      "kiosk's registered, not revoked key(s)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="give up when the broker cannot be reached in this many seconds (default %(default)s)")
    p.add_argument("--out", metavar="FILE", help="keygen: where to write the private key")
    p.add_argument("--force", action="store_true", help="keygen: replace existing key files")
    add_broker_arguments(p)
    for action in p._actions:  # --broker is required only to send, not for keygen
        if action.dest == "broker":
            action.required = False


def public_path(private: Path) -> Path:
    """``centre-key.pem`` -> ``centre-key.pub.pem`` (the device key's naming)."""
    stem = private.name[:-4] if private.name.endswith(".pem") else private.name
    return private.with_name(stem + ".pub.pem")


def keygen(out: str, force: bool) -> int:
    from kiosk.wire import signing

    private = Path(out)
    public = public_path(private)
    if not force and (private.exists() or public.exists()):
        raise UsageError(f"{private} or {public} exists (use --force to replace it)")
    key = signing.generate_key()
    try:
        signing.write_private_key(private, key)
        signing.write_public_key(public, key)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or private}: {exc.strerror}") from None
    print(f"centre command key {signing.kid_of(key.public_key())}: private {private} (mode 0600), "
          f"public {public} (install it on every kiosk as [mqtt] centre_key)")
    return 0


def build(name: str, body, site: str, device: str, key, expires_in: float | None = None) -> tuple[str, bytes, str]:
    """``(topic, signed message, command id)`` for one command (:func:`kiosk.wire.commands.signed`)."""
    from kiosk.wire.commands import signed

    return signed(name, body, site, device, key, expires_in)


def kiosk_keys(args):
    """The keys the kiosk's answer must verify with (--kiosk-key, --registry), or None to leave it unchecked."""
    from kiosk.wire import signing

    owner = f"{args.site}/{args.device}"
    keys = []
    if args.kiosk_key:
        keys.append(signing.load_public_key(args.kiosk_key))
    if args.registry:
        from kiosk.wire import registry

        if not Path(args.registry).exists():
            raise UsageError(f"--registry: no such file {args.registry}")
        rows = registry.active(registry.load(args.registry), args.site, args.device)
        if not rows:
            raise UsageError(f"{args.registry}: no active key for {owner}")
        keys += [signing.public_key_from_pem(r.public_key.encode(), f"{args.registry}: {owner}") for r in rows]
    return signing.KeyRing.of([(owner, k) for k in keys]) if keys else None


def run(args) -> int:
    if args.name == "keygen":
        if not args.out:
            raise UsageError("keygen needs --out FILE")
        return keygen(args.out, args.force)
    missing = [opt for opt in ("key", "broker", "site", "device") if not getattr(args, opt)]
    if missing:
        raise UsageError("needs " + ", ".join(f"--{m}" for m in missing))
    if not _NAME.match(args.name):
        raise UsageError(f"not a command name: {args.name!r}")
    for opt in ("site", "device"):
        if not _SEGMENT.match(getattr(args, opt)):
            raise UsageError(f"--{opt} must be one topic level (no /, +, # or spaces)")
    if args.wait < 0 or args.timeout <= 0 or (args.expires_in is not None and args.expires_in <= 0):
        raise UsageError("--wait, --timeout and --expires-in must be positive")
    body = args.payload
    if args.json:
        try:
            body = json.loads(args.payload or "null")
        except ValueError:
            raise UsageError("--json: PAYLOAD is not JSON") from None

    from kiosk.wire import signing
    from kiosk.commands.monitor import broker_settings

    settings = broker_settings(args)
    try:
        key = signing.load_private_key(args.key)
        kiosk_ring = kiosk_keys(args)
    except signing.SigningKeyError as exc:
        raise UsageError(str(exc)) from None
    topic, message, command_id = build(args.name, body, args.site, args.device, key, args.expires_in)
    if len(message) > 4096:
        raise UsageError("the signed command is larger than 4096 bytes: the kiosk would refuse it")
    return _send(settings, args, topic, message, command_id, kiosk_ring)


def _send(settings, args, topic: str, message: bytes, command_id: str, kiosk_ring) -> int:
    from kiosk.wire import signing
    from kiosk.wire.broker import make_client
    from kiosk.wire.topics import cmd_result_of
    from kiosk.secrets import SecretError

    result_topic = cmd_result_of(topic)
    connected, subscribed, answered = threading.Event(), threading.Event(), threading.Event()
    answer: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            answer["refused_by_broker"] = str(reason_code)
            connected.set()
            return
        connected.set()
        if args.wait:
            client.subscribe(result_topic, qos=1)
        else:
            subscribed.set()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, msg):
        try:
            obj = signing.parse(msg.payload)
        except signing.SignatureRefused:
            return
        if obj.get("id") != command_id:
            return  # another command's answer
        if kiosk_ring is not None:
            try:
                obj = signing.verify(msg.payload, msg.topic, kiosk_ring).payload
            except signing.SignatureRefused as exc:
                answer.setdefault("forged", exc.reason)
                return
        answer["result"] = {k: v for k, v in obj.items() if k != signing.SIG_FIELD}
        answered.set()

    try:
        client, address = make_client(f"centre-command-{uuid.uuid4().hex[:8]}", args.broker, settings)
    except (SecretError, ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        deadline = time.monotonic() + args.timeout
        if not connected.wait(args.timeout) or "refused_by_broker" in answer:
            why = answer.get("refused_by_broker", "no answer")
            print(f"kiosk command: cannot reach the broker at {address} ({why})", file=sys.stderr)
            return 1
        if not subscribed.wait(max(0.1, deadline - time.monotonic())):
            print(f"kiosk command: the broker at {address} did not confirm the cmd-result subscription", file=sys.stderr)
            return 1
        info = client.publish(topic, message, qos=1, retain=False)
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not info.is_published():
            print(f"kiosk command: the broker at {address} did not acknowledge the command", file=sys.stderr)
            return 1
        if not args.wait:
            print(f"sent {args.name} {command_id} to {topic}")
            return 0
        if not answered.wait(args.wait):
            extra = f" (an answer failed its signature check: {answer['forged']})" if "forged" in answer else ""
            print(f"kiosk command: no answer from {args.site}/{args.device} within {args.wait:g} s{extra}", file=sys.stderr)
            return 1
        result = answer["result"]
        if kiosk_ring is None:
            print("kiosk command: the answer's signature was not checked (no --kiosk-key or --registry)", file=sys.stderr)
        print(json.dumps(result, ensure_ascii=False))
        return 0 if result.get("result") == "ok" else 1
    finally:
        client.disconnect()
        client.loop_stop()
