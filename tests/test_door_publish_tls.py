"""TLS with client certificates against a real mosquitto: CA, certificate and key from the config."""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import logging
import shutil
import socket
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import free_port
from kiosk.door.assembly import open_ledger, open_publisher
from test_door_publish_mqtt import checkin, make_config, wait_for


def _cert(subject: str, issuer_key, issuer_name, key, ca=False, server=False):
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    return b.sign(issuer_key, hashes.SHA256())


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _write(path, cert=None, key=None):
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


@pytest.fixture
def tls_broker(tmp_path):
    """mosquitto with a TLS listener that requires a client certificate from our CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("kiosk test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", ca_key, ca.subject, server_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("hn-hk/kiosk-01", ca_key, ca.subject, client_key)
    for name, cert, key in (("ca.pem", ca, None), ("server.pem", server, None), ("server.key", None, server_key),
                            ("client.pem", client, None), ("client.key", None, client_key)):
        _write(tmp_path / name, cert, key)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\ncafile {tmp_path}/ca.pem\ncertfile {tmp_path}/server.pem\n"
                    f"keyfile {tmp_path}/server.key\nrequire_certificate true\nuse_identity_as_username true\n"
                    f"allow_anonymous false\nuser {getpass.getuser()}\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: proc.poll() is not None or _listening(port)) and proc.poll() is None, \
        "mosquitto with TLS did not start"
    yield f"mqtts://127.0.0.1:{port}", tmp_path
    proc.terminate()
    proc.wait(5)


def test_client_certificate_key_from_credential(tls_broker, monkeypatch, caplog):
    url, certs = tls_broker
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(certs))
    cfg = make_config(certs, url, f'ca_file="{certs}/ca.pem"\ncert_file="{certs}/client.pem"\n'
                                  'key_file="credential:client.key"\n')
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            assert wait_for(lambda: pub.connected, 10)
            ledger.record(checkin())
            pub.wake()
            assert wait_for(lambda: ledger.outbox_size() == 0)
        finally:
            pub.stop()
    assert "PRIVATE KEY" not in caplog.text


def test_untrusted_broker_is_refused(tls_broker, tmp_path):
    url, certs = tls_broker
    other_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp_path / "other-ca.pem", _cert("someone else", other_key, None, other_key, ca=True))
    cfg = make_config(tmp_path, url, f'ca_file="{tmp_path}/other-ca.pem"\ncert_file="{certs}/client.pem"\n'
                                     f'key_file="{certs}/client.key"\n')
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            ledger.record(checkin())
            pub.wake()
            time.sleep(1.5)
            assert not pub.connected and ledger.outbox_size() == 1  # nothing leaves for an unverified broker
        finally:
            pub.stop()


def test_monitor_and_simulator_over_tls(tls_broker):
    import json
    import sys
    from pathlib import Path

    url, certs = tls_broker
    tls = ["--ca-file", f"{certs}/ca.pem", "--cert-file", f"{certs}/client.pem", "--key-file", f"{certs}/client.key"]
    root = Path(__file__).resolve().parent.parent

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=30,
                              cwd=root)

    reg = str(certs) + "/fleet.json"  # the simulated kiosks sign; the centre believes only the registry's keys
    sim = cli("simulate", "--broker", url, *tls, "--kiosks", "3", "--rate", "30", "--duration", "0.3", "--json",
              "--write-registry", reg)
    assert sim.returncode == 0, sim.stderr
    mon = cli("monitor", "--broker", url, *tls, "--registry", reg, "--once", "--json", "--settle", "0.3")
    assert mon.returncode == 0, mon.stderr
    assert json.loads(mon.stdout)["totals"]["scans"] == json.loads(sim.stdout)["checkins"]
    bad = cli("monitor", "--broker", url, "--registry", reg, "--ca-file", f"{certs}/missing.pem", "--once")
    assert bad.returncode == 2 and "cannot read" in bad.stderr
