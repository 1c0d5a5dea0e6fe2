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


def keygen(out: str, force: bool) -> int:
    from kiosk.ops.command import make_centre_key, public_path

    private = Path(out)
    public = public_path(private)
    if not force and (private.exists() or public.exists()):
        raise UsageError(f"{private} or {public} exists (use --force to replace it)")
    try:
        kid = make_centre_key(private, public)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or private}: {exc.strerror}") from None
    print(f"centre command key {kid}: private {private} (mode 0600), "
          f"public {public} (install it on every kiosk as [mqtt] centre_key)")
    return 0


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

    from kiosk.commands.monitor import broker_settings
    from kiosk.ops.command import AnswerKeysError, answer_keys
    from kiosk.wire import signing
    from kiosk.wire.commands import signed

    settings = broker_settings(args)
    try:
        key = signing.load_private_key(args.key)
        kiosk_ring = answer_keys(args.site, args.device, args.kiosk_key, args.registry)
    except (signing.SigningKeyError, AnswerKeysError) as exc:
        raise UsageError(str(exc)) from None
    topic, message, command_id = signed(args.name, body, args.site, args.device, key, args.expires_in)
    if len(message) > 4096:
        raise UsageError("the signed command is larger than 4096 bytes: the kiosk would refuse it")
    return _send(settings, args, topic, message, command_id, kiosk_ring)


def _send(settings, args, topic: str, message: bytes, command_id: str, kiosk_ring) -> int:
    from kiosk.ops.command import send
    from kiosk.secrets import SecretError

    try:
        outcome = send(args.broker, settings, topic, message, command_id, wait=args.wait, timeout=args.timeout,
                       ring=kiosk_ring)
    except (SecretError, ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    address = outcome.address
    if outcome.stage == "unreachable":
        print(f"kiosk command: cannot reach the broker at {address} ({outcome.why})", file=sys.stderr)
        return 1
    if outcome.stage == "unsubscribed":
        if outcome.why:
            print(f"kiosk command: the broker at {address} refused the cmd-result subscription ({outcome.why}): "
                  "the command was not sent", file=sys.stderr)
        else:
            print(f"kiosk command: the broker at {address} did not confirm the cmd-result subscription: "
                  "the command was not sent", file=sys.stderr)
        return 1
    if outcome.stage == "unacknowledged":
        why = f" ({outcome.why})" if outcome.why else ""
        print(f"kiosk command: the broker at {address} did not acknowledge the command{why}", file=sys.stderr)
        return 1
    if outcome.stage == "sent":
        print(f"sent {args.name} {command_id} to {topic}")
        return 0
    if outcome.stage == "unanswered":
        extra = f" (an answer failed its signature check: {outcome.forged})" if outcome.forged else ""
        print(f"kiosk command: no answer from {args.site}/{args.device} within {args.wait:g} s{extra}", file=sys.stderr)
        return 1
    result = outcome.result or {}
    if kiosk_ring is None:
        print("kiosk command: the answer's signature was not checked (no --kiosk-key or --registry)", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result.get("result") == "ok" else 1
