"""The centre as systemd services (issue 23.3): its units, systemd's own verdicts on them, its start-up line.

systemd-analyze checks each unit file offline: ``verify`` (it loads, its ExecStart exists) and
``security`` (the exposure figure docs/operations.md reports must still hold).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from centre_helpers import small_city, write_city
from kiosk.centre.startup import safe_url, startup_line
from kiosk.centre.store import open_store
from test_systemd_unit import _verify, needs_analyze, parse_unit

ROOT = Path(__file__).resolve().parent.parent
UNITS = {name: ROOT / "systemd" / name for name in ("kiosk-centre.service", "kiosk-centre-ingest@.service")}
# The exposure systemd-analyze gives each unit (docs/operations.md): a change that weakens one fails here.
MAX_EXPOSURE = {"kiosk-centre.service": 1.5, "kiosk-centre-ingest@.service": 1.5, "kiosk.service": 2.0,
                "kiosk-update.service": 6.0, "kiosk-firstboot.service": 3.0}


@pytest.fixture(params=sorted(UNITS))
def unit(request):
    return request.param, parse_unit(UNITS[request.param].read_text())


def test_a_dedicated_user_with_no_privilege_and_secrets_only_as_credentials(unit):
    name, u = unit
    svc = u["Service"]
    assert svc["User"] == ["kiosk-centre"] and svc["Group"] == ["kiosk-centre"]
    assert svc["CapabilityBoundingSet"] == [""] and svc["AmbientCapabilities"] == [""]
    for key in ("NoNewPrivileges", "PrivateUsers", "PrivateTmp", "PrivateDevices", "ProtectHome",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "RestrictSUIDSGID",
                "LockPersonality", "MemoryDenyWriteExecute"):
        assert svc[key] == ["yes"], key
    assert svc["ProtectSystem"] == ["strict"] and svc["UMask"] == ["0077"]
    assert svc["LoadCredential"] == ["centre:/etc/credstore/kiosk-centre"]
    exec_start = " ".join(svc["ExecStart"])
    # Every secret the command line names is a credential, never a file anyone else can read.
    for option in ("--session-key-file", "--password-file"):
        m = re.search(rf"{option} (\S+)", exec_start)
        if m:
            assert m.group(1).startswith("credential:centre_"), (option, m.group(1))
    assert "PGPASSFILE=%d/centre_pgpass" in svc["Environment"]
    assert svc["RestartPreventExitStatus"] == ["2"]


def test_the_dashboard_serves_and_the_workers_only_ingest():
    web = " ".join(parse_unit(UNITS["kiosk-centre.service"].read_text())["Service"]["ExecStart"])
    worker = " ".join(parse_unit(UNITS["kiosk-centre-ingest@.service"].read_text())["Service"]["ExecStart"])
    assert "--no-ingest" in web and "--listen" in web and "--accounts" in web
    assert "--no-web" in worker and "--share-group" in worker
    # One client id per instance: each worker's broker session (and its queued messages) survives its restart.
    assert "--client-id kiosk-centre-ingest-%i" in worker
    # Each process its own metrics listener, as Prometheus scrapes them (docs/operations.md, "Metrics").
    assert "--metrics-listen ${CENTRE_METRICS_HOST}:9464" in web
    assert "--metrics-listen ${CENTRE_METRICS_HOST}:947%i" in worker


@needs_analyze
@pytest.mark.parametrize("name", sorted(UNITS))
def test_systemd_analyze_verify_accepts_the_centre_units(tmp_path, name):
    text = UNITS[name].read_text()
    target = name.replace("@.", "@1.")  # an instance of the template
    r = _verify(tmp_path, text, target, "opt/kiosk-centre/venv/bin/kiosk")
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def exposure(path: Path) -> float:
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-500:] + r.stderr
    return float(m.group(1))


@needs_analyze
@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_systemd_analyze_security_exposure_stays_as_documented(name):
    assert exposure(ROOT / "systemd" / name) <= MAX_EXPOSURE[name]
    figure = f"`{name}` | {exposure(ROOT / 'systemd' / name):.1f}"
    assert figure in (ROOT / "docs" / "operations.md").read_text(), f"docs/operations.md should say {figure}"


# -- the start-up line ---------------------------------------------------------------------------

def test_no_password_ever_reaches_the_start_up_line():
    assert safe_url("postgresql://centre:s3cret@db.example:5432/kiosk") == "postgresql://centre@db.example:5432/kiosk"
    assert safe_url("postgresql://db.example/kiosk?user=centre&password=s3cret&sslmode=require") == \
        "postgresql://db.example/kiosk?user=centre&sslmode=require"
    assert safe_url("/var/lib/kiosk-centre/centre.sqlite3") == "/var/lib/kiosk-centre/centre.sqlite3"
    assert safe_url("mqtts://centre:pw@broker.example:8883") == "mqtts://centre@broker.example:8883"


def test_the_start_up_line_counts_the_registry(tmp_path):
    from kiosk.centre.migrations import LATEST

    city = small_city(venues=10, share=0.5)
    from centre_helpers import registry_of

    store = open_store()
    store.load_fleet(registry_of(city))
    store.import_venues(city.venues)
    line = startup_line(store, listen="127.0.0.1:8080", broker="mqtt://127.0.0.1:1883")
    assert line == (f"kiosk centre: dashboard on http://127.0.0.1:8080; ingesting from mqtt://127.0.0.1:1883; "
                    f"store sqlite :memory:; registry: {len(city.kiosks)} kiosk(s) (0 revoked), "
                    f"{len(city.venues)} registered venue(s); schema version {LATEST}; no metrics listener")
    assert startup_line(store, listen=None, broker="mqtt://127.0.0.1:1883", metrics="10.0.0.5:9471").endswith(
        "; metrics and probes on http://10.0.0.5:9471/metrics")
    store.close()


def test_an_ingest_worker_says_what_it_uses_when_it_starts(broker, tmp_path):
    city = small_city(venues=8, share=0.5)
    reg, ven = write_city(city, tmp_path)
    db = tmp_path / "centre.sqlite3"
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "centre", "--no-web", "--broker", broker.url,
                             "--registry", str(reg), "--venues", str(ven), "--db", str(db)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    lines: list[str] = []
    found = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line)
            if "kiosk centre:" in line:
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(30), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(30)
    reader.join(10)
    line = next(ln for ln in lines if "kiosk centre:" in ln)
    assert (f"no dashboard (--no-web); ingesting from {broker.url}; store sqlite {db}; "
            f"registry: {len(city.kiosks)} kiosk(s) (0 revoked), {len(city.venues)} registered venue(s)") in line
    # The handler is set before the line is logged: a SIGTERM right after it is a clean stop.
    assert proc.returncode == 0 and "Traceback" not in "".join(lines)


@needs_analyze
def test_systemd_analyze_verify_accepts_the_kiosks_update_unit(tmp_path):
    r = _verify(tmp_path, (ROOT / "systemd" / "kiosk-update.service").read_text(), "kiosk-update.service")
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    path = parse_unit((ROOT / "systemd" / "kiosk-update.path").read_text())
    assert path["Path"]["PathChanged"] == ["/var/lib/kiosk/update-request.json"]
    assert path["Path"]["Unit"] == ["kiosk-update.service"]
