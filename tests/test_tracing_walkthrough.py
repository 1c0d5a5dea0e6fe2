"""docs/tracing.md's walkthrough, run as written: from nothing to an F1 list on a real broker.

The commands are taken from the markdown (the fenced blocks after a
``<!-- walkthrough: ... -->`` marker), so the page and this test cannot drift:

* ``desk`` blocks run in bash on "the tracing desk" (a folder), in order, each in a
  shell that has the ``export`` lines of the blocks before it. The only change: the
  example broker URL and its CA file become this test's mosquitto;
* ``fleet.csv`` is the fleet file the IT staff feed ``kiosk fleet``;
* the ``kiosk`` block runs on each kiosk, a folder standing for its root file
  system: ``/etc/kiosk/`` is that folder's, ``sudo`` is dropped, and the service
  restart is this test starting the kiosk's tracing responder from the resulting
  ``kiosk.toml``.

The broker is mosquitto with the password file and ACL ``kiosk fleet`` wrote: each
kiosk logs in as its own user, the desk as ``tracer``. The kiosks' visits are made
in the doc's window; the case shows its CCCD QR code, photographed as case-qr.png.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

from kiosk import config
from kiosk.wire import signing
from kiosk.door.decide.checkin import Checkin
from kiosk.door.verify import Holder
from kiosk.door.tracing import responder_from_config
from kiosk.door.tracing.service import TraceService
from kiosk.door.assembly import open_ledger, open_pseudonyms

from secured_broker import start_secured_broker
from tracing_fleet import VN, PahoTelemetry, read_f1

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "tracing.md"
CASE_CODE = "001185001234|012345678|Trần Thị Bình|04031985|Nữ|Hà Nội|01012021"  # a CCCD chip card's QR text


def walkthrough() -> list[tuple[str, str]]:
    """(marker, block text) of each marked block of the walkthrough section, in order."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Walkthrough")
    section = text[start:text.index("\n## ", start + 1)]
    return [(kind, body) for kind, _, body in
            re.findall(r"<!-- walkthrough: (\S+) -->\n```(\w+)\n(.*?)```", section, re.S)]


def substitute(block: str, old: str, new: str) -> str:
    assert old in block, f"the walkthrough no longer has {old!r}: update this test's substitutions"
    return block.replace(old, new)


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2021, 9, day, hour, minute, tzinfo=VN)


def person(name: str, id_number: str, birth: str) -> Holder:
    return Holder(name=name, birth_date=birth, id_number=id_number, phone=None)


# Who came in where (the doc's request asks 2021-09-01 to 2021-09-14 18:00).
CASE = person("Trần Thị Bình", "001185001234", "1985-03-04")
VISITS = {
    "gate-01": [(CASE, at(10, 10, 0)), (person("Nguyễn Văn An", "001090000001", "1990-01-01"), at(10, 9, 40)),
                (person("Phạm Văn Dũng", "001090000003", "1990-01-03"), at(10, 11, 0))],
    "gate-02": [(person("Lê Thị Cúc", "001090000002", "1990-01-02"), at(10, 10, 15))],
    "gate-03": [(person("Hoàng Thị Em", "001090000004", "1990-01-04"), at(10, 10, 0))],
}


class Kiosk:
    """One kiosk of the fleet file: its root folder, and once configured, its tracing responder on the broker."""

    def __init__(self, folder: Path, site: str, device: str):
        self.root, self.site, self.device = folder, site, device
        self.service = self.telemetry = None

    def render_config(self, fleet_out: Path, broker_url: str) -> None:
        """The kiosk.toml `kiosk provision` makes from the card's device.toml (state under the kiosk's root)."""
        from kiosk.ops import provision

        overrides, self.creds = provision.load_device_file(fleet_out / f"{self.site}-{self.device}" / "kiosk" /
                                                           "device.toml")
        assert "authority_key" in self.creds  # kiosk fleet --authority-key put it on the card
        provision.point_at_credentials(overrides, self.creds)
        overrides["device"]["state_dir"] = str(self.root / "var/lib/kiosk")
        overrides.setdefault("mqtt", {})["url"] = broker_url
        (self.root / "etc/kiosk").mkdir(parents=True)
        (self.root / "var/lib/kiosk").mkdir(parents=True)
        template = provision.read_template(ROOT / "config" / "kiosk.example.toml")
        (self.root / "etc/kiosk/kiosk.toml").write_text(provision.render_config(template, overrides), encoding="utf-8")

    def start(self, port: int) -> None:
        """What `systemctl restart kiosk` does for tracing, with the visits of the day already in the ledger."""
        cfg = config.load(self.root / "etc/kiosk/kiosk.toml")
        assert cfg.ledger.visit_log and cfg.tracing.authority_key == str(self.root / "etc/kiosk/authority-sign.pub.pem")
        pseudonyms = open_pseudonyms(cfg)
        with open_ledger(cfg) as ledger:
            for holder, when in VISITS[self.device]:
                ledger.record(Checkin(id=uuid.uuid4().hex, at=when, verdict="accept", reason="ok", format="cccd",
                                      valid=True, signed=False, pseudonym=pseudonyms.of(f"vn-id:{holder.id_number}"),
                                      holder=holder, captured_at=0.0, source="camera"))
        key = signing.private_key_from_pem(self.creds["device_key"].encode(), "device_key")
        self.telemetry = PahoTelemetry(port, f"kiosk-{self.site}-{self.device}", cfg.mqtt.username,
                                       self.creds["mqtt_password"])
        self.service = TraceService(responder_from_config(cfg, device_key=key), self.telemetry)
        self.service.start()
        self.telemetry.wait_subscribed()

    def stop(self) -> None:
        if self.service:
            self.service.stop()
            self.telemetry.close()


def run(block: str, cwd: Path, env_file: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", f"source {env_file}\n{block}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{block}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_the_walkthrough_works_as_written(tmp_path):
    blocks = walkthrough()
    assert [k for k, _ in blocks] == ["desk", "fleet.csv", "desk", "kiosk", "desk", "desk", "desk", "desk"]
    desk = tmp_path / "desk"
    desk.mkdir()
    env_file = tmp_path / "env.sh"
    env_file.write_text("")
    import segno

    segno.make(CASE_CODE, error="m").save(desk / "case-qr.png", scale=6, border=4)  # the photo of the case's code
    broker = None
    kiosks: list[Kiosk] = []
    outputs = []
    try:
        for kind, block in blocks:
            if kind == "fleet.csv":
                (desk / "fleet.csv").write_text(block, encoding="utf-8")
                for line in block.splitlines()[1:]:
                    site, device = line.split(",")[:2]
                    kiosks.append(Kiosk(tmp_path / f"kiosk-{device}", site, device))
            elif kind == "kiosk":
                block = substitute(block, "sudo systemctl restart kiosk\n", "").replace("sudo ", "")
                for k in kiosks:
                    k.render_config(desk / "fleet-out", f"mqtt://127.0.0.1:{broker.port}")
                    home = k.root / "home"
                    home.mkdir()
                    shutil.copy(desk / "authority-keys" / "authority-sign.pub.pem", home)
                    run(substitute(block, "/etc/kiosk/", f"{k.root}/etc/kiosk/"), home, env_file)
                    k.start(broker.port)
            else:
                if "export BROKER=" in block:
                    assert broker is not None
                    block = substitute(block, "export BROKER=mqtts://broker.example.vn:8883",
                                       f"export BROKER=mqtt://127.0.0.1:{broker.port}")
                    block = substitute(block, " --ca-file district-ca.crt", "")
                    env_file.write_text(env_file.read_text() + block)
                outputs.append(run(block, desk, env_file))
                if broker is None and (desk / "fleet-out" / "broker" / "acl").exists():
                    out = desk / "fleet-out" / "broker"
                    broker = start_secured_broker(tmp_path, out / "passwd", out / "acl", generated=out / "kiosk.conf")
        # the F1 list: the case, the contact at its own door, and the one at the other door of the same venue
        rows = read_f1(desk / "f1-case-001.csv")
        assert [(r["role"], r["name"], r["kiosks"], r["together"]) for r in rows] == [
            ("case", "Trần Thị Bình", "hn-hk/gate-01", ""),
            ("contact", "Nguyễn Văn An", "hn-hk/gate-01", "09:40-10:00 (20 min before the case)"),
            ("contact", "Lê Thị Cúc", "hn-hk/gate-02", "10:00-10:15 (15 min after the case)")]
        assert {r["missing"] for r in rows} == {"no phone: a CCCD chip-card code carries none"}
        assert [r["id_number"] for r in rows] == ["001185001234", "001090000001", "001090000002"]
        assert rows[2]["visit_time"] == "2021-09-10 10:15"
        first, again = outputs[-2], outputs[-1]
        assert "round 2: asked 1 kiosk at HN-HK-000123" in first.stderr
        assert "3 rows (3 new) in f1-case-001.csv and f1-case-001.xlsx" in first.stdout
        assert "4 new answers, 1 new check-in of the case, 2 new contacts" in first.stdout
        assert "round 2: hn-hk/gate-02: answered, 1 record\n" in first.stderr
        # collect again: nothing lost, nothing new
        assert "0 new answers" in again.stdout and "3 rows (0 new)" in again.stdout
        assert read_f1(desk / "f1-case-001.csv") == rows
    finally:
        for k in kiosks:
            k.stop()
        if broker is not None:
            broker.stop()
