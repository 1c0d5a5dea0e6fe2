"""``kiosk update rollout`` (issue 23.5b): a canary share of the fleet first, then the rest, by signed commands.

On a real mosquitto. Each kiosk here is what an update touches on a real one: the command gate
with the ``update`` action (real signatures, the real spool file), the root updater
``kiosk update --request`` on a prefix of its own (fetching the release by URL, checking its
SHA-256, the safe update with rollback; systemctl is the fake of tests/test_update.py, which
reports a release marked broken as failed), and the kiosk's signed info and health, published
again after the "restart" with the version the venv link then points at. The rollout's
deadlines run on a clock the test moves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tarfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers import wait_for
from kiosk.wire.commands import signed as signed_command
from kiosk.door.remote.gate import CommandGate, centre_keyring, update_action
from kiosk.ops import provision, rollout
from kiosk.ops import update as kupdate
from kiosk.testing.clock import FakeClock
from kiosk.wire import registry, signing
from kiosk.wire.topics import Topics
from kiosk.wire.update import REQUEST_FILE, write as write_request
from test_update import FAKE_SYSTEMCTL, FakeClock as UpdaterClock, make_release

OLD, NEW = "0.1.0", "0.2.0"


def make_source(folder: Path, version: str) -> Path:
    """The smallest tree ``kiosk update`` accepts as the kiosk project, at ``version``."""
    (folder / "kiosk").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "checkin-kiosk"\n')
    (folder / "README.md").write_text("kiosk\n")
    (folder / "kiosk" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    return folder


@pytest.fixture
def release(tmp_path):
    """The new release as an archive the kiosks fetch by URL, and the name its venv gets."""
    src = make_source(tmp_path / "src", NEW)
    archive = tmp_path / "kiosk-src-0.2.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("pyproject.toml", "README.md", "kiosk"):
            tar.add(src / name, arcname=name)
    rel = rollout.release_of_archive(archive, archive.as_uri())
    return rel, f"{NEW}-{provision.source_digest(src)[:10]}"


@pytest.fixture
def centre_key(tmp_path):
    key = signing.generate_key()
    signing.write_public_key(tmp_path / "centre.pub.pem", key)
    return key


class Kiosk:
    """One kiosk's update path: gate -> spool -> root updater -> restart -> signed info and health."""

    def __init__(self, tmp: Path, broker, device: str, release_name: str, journal: list):
        self.site, self.device = "hn-hk", device
        self.base = f"checkin/v1/{self.site}/{device}"
        self.key = signing.generate_key()
        self.journal = journal  # (what, device) in the order it happened, shared by the fleet
        self.dir = tmp / device
        self.prefix = self.dir / "opt-kiosk"
        make_release(self.prefix, f"{OLD}-old")
        self.new = make_release(self.prefix, release_name)
        (self.prefix / "venv").symlink_to(f"releases/{OLD}-old")
        self.systemctl = self.dir / "systemctl"
        self.systemctl.write_text(FAKE_SYSTEMCTL.format(prefix=self.prefix))
        self.systemctl.chmod(0o755)
        self.config = self.dir / "kiosk.toml"
        self.config.write_text(
            f'[device]\nsite = "{self.site}"\nid = "{device}"\nstate_dir = "{self.dir / "state"}"\n'
            f'[venue]\nid = "V-{device}"\nname = "Chợ {device}"\nqr_content = "VENUE-{device}"\n'
            f'[mqtt]\nurl = "{broker.url}"\ncommands = ["update"]\ncentre_key = "{tmp / "centre.pub.pem"}"\n',
            encoding="utf-8")
        self.spool = self.dir / "state" / REQUEST_FILE
        self.commands: list[str] = []  # ids of the update commands that reached the gate
        self.updates = 0  # root updater runs finished
        self.exit_codes: list[int] = []
        self.gate = CommandGate(Topics(self.site, device), centre_keyring(str(tmp / "centre.pub.pem")), ["update"],
                                {"update": update_action(self._queue)}, self.key, self._send, 300,
                                state_file=self.dir / "state" / "command-floor.json",
                                schedule=lambda fn: threading.Thread(target=fn, daemon=True).start() or True)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"kiosk-{device}")
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{self.base}/cmd/+", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self.gate.offer(m.topic, m.payload)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert subscribed.wait(5)
        self.announce()

    def entry(self) -> registry.Entry:
        return registry.entry_for(self.site, self.device, f"V-{self.device}", self.key)

    @property
    def runs(self) -> str:
        return os.readlink(self.prefix / "venv").removeprefix("releases/").split("-")[0]

    def _send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def _publish(self, leaf: str, payload: dict) -> None:
        topic = f"{self.base}/{leaf}"
        self.client.publish(topic, signing.sign_bytes({**payload, "ts": signing.iso(time.time())}, topic,
                                                      self.key), qos=1, retain=True).wait_for_publish(5)

    def announce(self) -> None:
        """What kiosk.service publishes when it (re)starts: status, info with its version, health."""
        self.client.publish(f"{self.base}/status", b"online", qos=1, retain=True).wait_for_publish(5)
        self._publish("info", {"version": self.runs, "venue_id": f"V-{self.device}", "venue_name": self.device,
                               "venue_qr_sha256": "", "hardware": "test", "config_sha256": ""})
        self._publish("health", {"camera_ok": True, "display_ok": True, "ledger_ok": True, "degraded": []})

    def _queue(self, command) -> None:
        """The gate's hand-off, then what kiosk-update.path starts: the root updater on the spooled request."""
        self.commands.append(command.id)
        self.journal.append(("command", self.device))
        write_request(self.spool, command.topic, command.signed)
        threading.Thread(target=self._root_updater, daemon=True).start()

    def update_args(self, *extra: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        kupdate.add_arguments(parser)
        return parser.parse_args(["--request", str(self.spool), "--config", str(self.config), "--prefix",
                                  str(self.prefix), "--systemctl", str(self.systemctl), "--ready-timeout", "3",
                                  "--settle", "1", *extra])

    def _root_updater(self) -> None:
        clock = UpdaterClock()
        args = self.update_args()
        updater = kupdate.Updater(Path(args.prefix), [str(self.systemctl)], False, out=lambda s: None,
                                  sleep=clock.sleep, clock=clock)
        self.exit_codes.append(kupdate.run(args, updater=updater))
        self.announce()  # kiosk.service restarted on whatever release the link points at now
        self.journal.append(("back", self.device))
        self.updates += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def fleet(tmp_path, broker, release, centre_key):
    journal: list = []
    kiosks = [Kiosk(tmp_path, broker, f"kiosk-{i:02d}", release[1], journal) for i in range(5)]
    watch = rollout.FleetWatch(broker.url, [k.entry() for k in kiosks])
    watch.start()
    assert watch.settle(0.3, 5)
    # Every kiosk's retained, signed info and health are in (a loaded machine may deliver them late).
    assert wait_for(lambda: all(watch.of((k.site, k.device)).version == OLD and watch.of((k.site, k.device)).health
                                for k in kiosks), 10)
    yield kiosks, watch, journal
    watch.stop()
    for k in kiosks:
        k.close()


def test_the_canary_comes_back_healthy_and_the_rest_follow(fleet, release, centre_key):
    kiosks, watch, journal = fleet
    rel, name = release
    clock, lines = FakeClock(), []
    ro = rollout.Rollout(watch, centre_key, rel, [(k.site, k.device) for k in kiosks], canary="40%",
                         deadline_s=600, clock=clock, out=lines.append)
    plan = ro.plan()
    assert len(plan.canary) == 2 and len(plan.rest) == 3 and not plan.up_to_date
    assert ro.run() == 0, lines
    assert all(k.runs == NEW and k.exit_codes == [0] for k in kiosks)
    assert all(os.readlink(k.prefix / "venv") == f"releases/{name}" for k in kiosks)
    # Staged: every canary kiosk was back before the first of the rest got its command.
    canary = {d for _, d in plan.canary}
    first_rest = next(i for i, (what, d) in enumerate(journal) if what == "command" and d not in canary)
    assert {d for what, d in journal[:first_rest] if what == "back"} == canary
    assert lines[-1] == f"rollout: done: the canary and 3 more kiosk(s) run {NEW}"
    # Each kiosk answered its signed command (queued) and checked it against the centre's key.
    assert all(k.gate.answered == {"queued": 1} for k in kiosks)

    # Run again: nobody is behind, nothing is sent.
    again = rollout.Rollout(watch, centre_key, rel, [(k.site, k.device) for k in kiosks], canary="40%",
                            deadline_s=600, clock=clock, out=lines.append)
    assert again.run() == 0 and lines[-1] == "rollout: nothing to do"
    assert all(len(k.commands) == 1 for k in kiosks)


def test_a_canary_that_fails_stops_the_rollout_and_the_rest_are_untouched(fleet, release, centre_key):
    kiosks, watch, journal = fleet
    rel, name = release
    clock, lines = FakeClock(), []
    ro = rollout.Rollout(watch, centre_key, rel, [(k.site, k.device) for k in kiosks], canary="1",
                         deadline_s=600, clock=clock, out=lines.append)
    plan = ro.plan()
    (canary,) = [k for k in kiosks if (k.site, k.device) in plan.canary]
    (canary.new / "BROKEN").write_text("")  # this release never becomes ready on the canary
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(ro.run()), daemon=True)
    runner.start()
    # The canary's safe update rolls back and the kiosk comes back on the old version ...
    assert wait_for(lambda: canary.updates == 1, 15)
    assert canary.exit_codes == [1] and canary.runs == OLD
    assert wait_for(lambda: watch.of((canary.site, canary.device)).version == OLD and not result, 5)
    # ... which is not the new one: the rollout waits for its deadline, on the test's clock.
    clock.advance(599)
    runner.join(0.3)
    assert runner.is_alive() and not result
    clock.advance(2)
    runner.join(10)
    assert result == [1], lines
    assert any(f"{canary.device} FAILED: not back healthy on {NEW} within 600 s: came back on {OLD}" in ln
               for ln in lines), lines
    assert lines[-1] == ("rollout: STOPPED: 1 of 1 canary kiosk(s) did not come back healthy on 0.2.0; "
                         "the other 4 kiosk(s) were not sent anything")
    for k in kiosks:
        if k is not canary:
            assert k.commands == [] and not k.spool.exists() and k.runs == OLD
            assert not (k.prefix / "systemctl.log").exists()


def test_a_kiosk_that_refuses_the_command_fails_at_once(fleet, release, centre_key, tmp_path):
    """A canary whose config does not enable ``update`` answers not-enabled: no need to wait for the deadline."""
    kiosks, watch, _ = fleet
    rel, _ = release
    kiosks[0].gate.enabled = frozenset()
    lines = []
    ro = rollout.Rollout(watch, centre_key, rel, [(kiosks[0].site, kiosks[0].device)], canary="1",
                         deadline_s=600, clock=FakeClock(), out=lines.append)
    assert ro.run() == 1
    assert f"rollout: canary: {kiosks[0].site}/{kiosks[0].device} FAILED: refused the command: not-enabled" in lines


# -- the root updater's own checks -------------------------------------------------------------

def test_the_root_updater_believes_only_what_the_centre_signed(tmp_path, broker, release, centre_key, capsys):
    rel, name = release
    k = Kiosk(tmp_path, broker, "kiosk-x", name, [])
    k.announce = lambda: None
    try:
        def run(*extra):
            clock = UpdaterClock()
            args = k.update_args(*extra)
            up = kupdate.Updater(Path(args.prefix), [str(k.systemctl)], False, out=lambda s: None,
                                 sleep=clock.sleep, clock=clock)
            return kupdate.run(args, updater=up), capsys.readouterr()

        topic = f"{k.base}/cmd/update"
        # The kiosk user rewrites the spooled request to point at another archive: the signature breaks.
        _, signed, _ = signed_command("update", rel.body(), k.site, k.device, centre_key)
        forged = json.loads(signed)
        forged["body"]["url"] = "file:///tmp/evil.tar.gz"
        write_request(k.spool, topic, json.dumps(forged).encode())
        rc, out = run()
        assert rc == 1 and "the centre's signature does not hold: bad-signature" in out.err
        # Signed by someone else.
        _, other, _ = signed_command("update", rel.body(), k.site, k.device, signing.generate_key())
        write_request(k.spool, topic, other)
        assert run()[0] == 1
        # Signed for another kiosk's topic.
        _, theirs, _ = signed_command("update", rel.body(), k.site, "kiosk-y", centre_key)
        write_request(k.spool, f"checkin/v1/{k.site}/kiosk-y/cmd/update", theirs)
        rc, out = run()
        assert rc == 1 and "not this kiosk's" in out.err
        # Signed, but the archive at the URL is not the one whose digest the centre signed.
        wrong = {**rel.body(), "sha256": hashlib.sha256(b"another archive").hexdigest()}
        _, signed_wrong, _ = signed_command("update", wrong, k.site, k.device, centre_key)
        write_request(k.spool, topic, signed_wrong)
        rc, out = run()
        assert rc == 1 and "is not the" in out.err and "the running kiosk was not touched" in out.err
        assert k.runs == OLD and not (k.prefix / "systemctl.log").exists()
        # The real thing installs; the same request again (the path unit may fire twice) does nothing more.
        _, good, _ = signed_command("update", rel.body(), k.site, k.device, centre_key)
        write_request(k.spool, topic, good)
        rc, out = run()
        assert rc == 0 and k.runs == NEW, out.err
        rc, out = run()
        assert rc == 0 and "acted on before" in out.out
        assert (k.prefix / "systemctl.log").read_text().count("restart kiosk.service") == 1
        assert not list(k.prefix.glob(".update-*"))  # the fetched archive and its unpacked tree are gone
    finally:
        k.close()


def test_a_bad_release_in_the_command_body_is_refused_by_the_gate(tmp_path, broker, release, centre_key):
    rel, name = release
    k = Kiosk(tmp_path, broker, "kiosk-z", name, [])
    try:
        for body, why in (({**rel.body(), "sha256": "abc"}, "sha256"), ({**rel.body(), "url": "ftp://x"}, "url"),
                          ("0.2.0", "object")):
            topic, signed, _ = signed_command("update", body, k.site, k.device, centre_key)
            outcome = k.gate.handle(topic, signed)
            assert (outcome.result, outcome.reason) == ("refused", "bad-body"), why
        assert k.commands == [] and not k.spool.exists()
    finally:
        k.close()


def test_canary_share_and_bad_options():
    assert rollout.canary_count("10%", 95) == 10 and rollout.canary_count("10%", 3) == 1
    assert rollout.canary_count("2", 5) == 2 and rollout.canary_count("9", 5) == 5
    assert rollout.canary_count("10%", 0) == 0
    for bad in ("ten", "0%", "150%", "-1"):
        with pytest.raises(rollout.RolloutError):
            rollout.canary_count(bad, 10)


def test_the_command_line_names_what_is_missing_and_checks_the_archive(tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kiosk", "update", "rollout", *args], capture_output=True,
                              text=True, timeout=60)

    r = cli("--broker", "mqtt://127.0.0.1:9")
    assert r.returncode == 2 and "rollout needs --registry, --key, --release, --url" in r.stderr
    key = tmp_path / "centre.pem"
    signing.write_private_key(key, signing.generate_key())
    (tmp_path / "reg.json").write_text(registry.dumps([]))
    (tmp_path / "not.tar.gz").write_bytes(b"not an archive")
    r = cli("--broker", "mqtt://127.0.0.1:9", "--registry", str(tmp_path / "reg.json"), "--key", str(key),
            "--release", str(tmp_path / "not.tar.gz"), "--url", "https://centre.example/r.tar.gz")
    assert r.returncode == 2 and "--release" in r.stderr and "Traceback" not in r.stderr


def test_a_dry_run_from_the_command_line_shows_the_plan_and_sends_nothing(fleet, release, centre_key, tmp_path,
                                                                          broker):
    import subprocess
    import sys

    kiosks, _, _ = fleet
    rel, _ = release
    (tmp_path / "fleet.registry.json").write_text(registry.dumps([k.entry() for k in kiosks]))
    signing.write_private_key(tmp_path / "centre-key.pem", centre_key)
    archive = Path(rel.url.removeprefix("file://"))
    r = subprocess.run([sys.executable, "-m", "kiosk", "update", "rollout", "--broker", broker.url,
                        "--registry", str(tmp_path / "fleet.registry.json"), "--key", str(tmp_path / "centre-key.pem"),
                        "--release", str(archive), "--url", rel.url, "--canary", "40%", "--quiet-seconds", "1",
                        "--dry-run"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"rollout: {NEW} ({rel.sha256[:12]}…): 0 kiosk(s) already on it, 5 behind; canary 2, then 3" in r.stdout
    assert "no command was sent" in r.stdout
    assert all(k.commands == [] for k in kiosks)
