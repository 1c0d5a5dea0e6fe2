#!/usr/bin/env python3
"""Signed-command benchmark: the check-in flow under a flood of signed reload-trust commands.

A real kiosk (assembled as ``kiosk run`` builds it: real verifier and policy, real
SQLite ledger, mock GPIO pins, no screen) talks to a mosquitto this script starts on a
free port. Visitors arrive at a steady rate (``--rate`` codes a second, each a new
person, offered to the intake as the camera would). After a quiet phase, a centre
client publishes ``--commands`` reload-trust commands, each correctly signed with the
centre key, as fast as the broker takes them; the kiosk reloads a trust list of
``--signers`` certificates (the issue's 900-entry list). Both phases are measured in
the same run, so the ratio of the flood's capture-to-verdict p95 to the quiet one is
the figure (issue 12: within 2x). Then the cost of signing and of verifying one
telemetry message (a counts payload) with ``kiosk.wire.signing``.

    .venv/bin/python scripts/bench_commands.py            # defaults: 900 commands, 900 signers, 20 codes/s
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kiosk import pc_covid, write_config  # noqa: E402 (the scripts folder is on the path: this script's own)
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(work: Path) -> tuple[subprocess.Popen, int]:
    """A private mosquitto on a free port (never 1883)."""
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n")
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


def trust_list(path: Path, n: int) -> None:
    """A trust-list JSON of ``n`` document-signer certificates (self-signed P-256), as a national export."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from kiosk.trust.store import kid_of

    now = datetime.now(timezone.utc)
    entries = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"DSC {i}")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(i + 1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
                .sign(key, hashes.SHA256()))
        der = cert.public_bytes(serialization.Encoding.DER)
        entries.append({"kid": base64.b64encode(kid_of(der)).decode(), "country": "VN",
                        "certificate": base64.b64encode(der).decode()})
    path.write_text(json.dumps({"issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "certificates": entries}))






def percentile(values: list[float], q: float) -> float:
    from kiosk.door.decode.stats import percentile as p

    return p(values, q) if values else float("nan")


def signing_costs(repeat: int) -> tuple[float, float]:
    """Microseconds to sign, and to verify, one counts message."""
    from kiosk.wire import signing

    key = signing.generate_key()
    ring = signing.KeyRing.of({"bench/kiosk": key.public_key()})
    topic = "checkin/v1/bench/kiosk/counts"
    counts = {"day": "2021-09-14", "accepted": 412, "rejected": 17, "duplicates": 9, "overrides": 2,
              "by_reason": {"ok": 412, "duplicate": 9, "override": 2, "expired": 5, "policy:test-too-old": 12},
              "by_format": {"eu-dcc": 301, "health-declaration": 120, "pc-covid": 17}, "unique_visitors": 398,
              "hourly": [0, 0, 0, 0, 0, 0, 3, 25, 61, 48, 40, 37, 52, 30, 28, 31, 29, 20, 7, 1, 0, 0, 0, 0],
              "dropped_events": 0, "last_scan": "2021-09-14T12:58:03.120Z", "seq": 48211,
              "ts": "2021-09-14T12:58:05.004Z"}
    t = time.perf_counter()
    for _ in range(repeat):
        message = signing.sign_bytes(counts, topic, key)
    sign_us = (time.perf_counter() - t) / repeat * 1e6
    t = time.perf_counter()
    for _ in range(repeat):
        signing.verify(message, topic, ring)
    verify_us = (time.perf_counter() - t) / repeat * 1e6
    return sign_us, verify_us


def centre_process(port: int, flood_file: Path, expect: int) -> None:
    """The centre, in its own process as on its own host: publish the flood, collect the answers."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    flood = json.loads(flood_file.read_text())
    answers: list[str] = []
    done, subscribed = threading.Event(), threading.Event()

    def on_message(client, userdata, msg):
        answers.append(json.loads(msg.payload)["reason"])
        if len(answers) >= expect:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-centre")
    client.on_connect = lambda c, u, f, rc, pr: c.subscribe("checkin/v1/bench/commands/cmd-result", qos=1)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.wait(10)
    print("ready", flush=True)
    sys.stdin.readline()  # go
    start = time.monotonic()
    for topic, message in flood:
        client.publish(topic, message.encode(), qos=1)
    done.wait(120)
    reasons: dict[str, int] = {}
    for r in answers:
        reasons[r] = reasons.get(r, 0) + 1
    print(json.dumps({"answered": len(answers), "seconds": time.monotonic() - start, "reasons": reasons}), flush=True)
    client.disconnect()
    client.loop_stop()


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--centre-process":
        centre_process(int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=900, help="signed reload-trust commands in the flood (default %(default)s)")
    p.add_argument("--signers", type=int, default=900, help="certificates in the trust list (default %(default)s)")
    p.add_argument("--rate", type=float, default=20.0, help="visitors' codes per second (default %(default)s)")
    p.add_argument("--quiet-seconds", type=float, default=10.0, help="quiet phase length (default %(default)s)")
    p.add_argument("--settle-seconds", type=float, default=1.0, help="flood phase: keep measuring this long after "
                                                                      "the last answer (default %(default)s)")
    p.add_argument("--repeat", type=int, default=2000, help="signing cost: messages timed (default %(default)s)")
    args = p.parse_args()

    from device.scanners import CodeSeen
    from gpiozero.pins.mock import MockFactory

    from kiosk.wire import signing
    from kiosk.door.assembly import assemble, load_trust
    from kiosk.wire.commands import signed as signed_command

    work = Path(tempfile.mkdtemp(prefix="kiosk-bench-commands-"))
    broker, port = start_broker(work)
    try:
        trust_path = work / "trust-list.json"
        trust_list(trust_path, args.signers)
        centre = signing.generate_key()
        signing.write_public_key(work / "centre.pub.pem", centre)
        from kiosk import config as kconfig

        cfg = kconfig.load(write_config(
            work, "commands", 'source = "none"', extra=f'[trust]\npaths = ["{trust_path}"]',
            mqtt=f'url = "mqtt://127.0.0.1:{port}"\ncommands = ["reload-trust", "notice"]\n'
                 f'centre_key = "{work / "centre.pub.pem"}"\nreconnect_min_seconds = 0.2\nreconnect_max_seconds = 1'))
        t = time.perf_counter()
        load_trust(cfg)
        load_ms = (time.perf_counter() - t) * 1000

        samples: list[tuple[float, float]] = []  # (verdict time, latency ms)
        lock = threading.Lock()

        def on_checkin(checkin, seq, code):
            now = time.monotonic()
            with lock:
                samples.append((now, (now - code.captured_at) * 1000))

        kiosk = assemble(cfg, pin_factory=MockFactory(), headless=True, on_checkin=on_checkin)
        stop = threading.Event()

        def visitors():
            n, period, due = 3 * 10**11, 1.0 / args.rate, time.monotonic()
            while not stop.is_set():
                kiosk.intake.camera(CodeSeen(pc_covid(n), time.monotonic(), "camera"))
                n += 1
                due += period
                stop.wait(max(0.0, due - time.monotonic()))

        flood_file = work / "flood.json"
        flood_file.write_text(json.dumps([(t, m.decode()) for t, m, _ in (
            signed_command("reload-trust", "", "bench", "commands", centre) for _ in range(args.commands))]))
        centre_proc = subprocess.Popen([sys.executable, __file__, "--centre-process", str(port), str(flood_file),
                                        str(args.commands)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert centre_proc.stdout.readline().strip() == "ready"
        phases: dict[str, tuple[float, float]] = {}
        summary: dict = {}

        def drive():
            try:
                while not kiosk.stages.publisher.subscribed(kiosk.remote.gate.topic_filter):
                    time.sleep(0.05)
                threading.Thread(target=visitors, daemon=True).start()
                time.sleep(1.0)  # let the first check-ins warm the ledger
                start = time.monotonic()
                time.sleep(args.quiet_seconds)
                phases["quiet"] = (start, time.monotonic())
                start = time.monotonic()
                centre_proc.stdin.write("go\n")
                centre_proc.stdin.flush()
                summary.update(json.loads(centre_proc.stdout.readline()))
                answered_at = time.monotonic()
                # The flood's effect lasts until the reload it folded has run too.
                while kiosk.remote.reloads.pending:
                    time.sleep(0.05)
                time.sleep(args.settle_seconds)
                phases["flood"] = (start, time.monotonic())
                phases["answered"] = (start, answered_at)
            finally:
                stop.set()
                kiosk.stop()

        threading.Thread(target=drive, daemon=True).start()
        kiosk.run(until_exhausted=False)
        centre_proc.wait(10)
    finally:
        broker.terminate()
        broker.wait(5)

    def window(name):
        a, b = phases[name]
        return [ms for at, ms in samples if a <= at <= b]

    quiet, flood = window("quiet"), window("flood")
    reasons = summary.get("reasons", {})
    sign_us, verify_us = signing_costs(args.repeat)
    reloads = kiosk.remote.reloads.runs
    print(f"trust list: {args.signers} signers, one load {load_ms:.0f} ms; visitors {args.rate:g}/s; "
          f"{args.commands} signed reload-trust commands")
    print()
    print("| phase | check-ins | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (("quiet", quiet), ("flood", flood)):
        print(f"| {name} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
              f"{max(values) if values else float('nan'):.1f} |")
    ratio = percentile(flood, 95) / percentile(quiet, 95)
    a, b = phases["answered"]
    print()
    print(f"flood p95 / quiet p95 = {ratio:.2f} (issue 12: within 2x); {summary.get('answered', 0)} of {args.commands} commands "
          f"answered in {b - a:.1f} s ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}); "
          f"trust reloads run: {reloads}")
    print()
    print("| kiosk.wire.signing, one counts message | µs | per second |")
    print("|---|---:|---:|")
    print(f"| sign | {sign_us:.1f} | {1e6 / sign_us:,.0f} |")
    print(f"| verify | {verify_us:.1f} | {1e6 / verify_us:,.0f} |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
