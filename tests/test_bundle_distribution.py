"""Trust bundles over a real mosquitto into a running kiosk (issue 12's round trip and refusals).

The trust authority uses its real tools (``kiosk trust keygen/build/publish``); the kiosk is
assembled as ``kiosk run`` builds it and takes bundles from the retained topic on its control
thread. Visitors' codes go through the real intake and flow; every wait is on a condition.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from helpers import code, kiosk_config, wait_for
from kiosk import config
from kiosk.wire import reasons, signing
from kiosk.cli import main
from kiosk.wire.commands import signed as signed_command
from kiosk.issuing.dcc import issue_dcc
from kiosk.issuing.keys import IssuerKey
from test_door_remote_install import BASE, DEVICE, SITE, Centre, Running

UVCI = "URN:UVCI:01:VN:WIRETEST000000000001"


@pytest.fixture(scope="module")
def dsc():
    return IssuerKey.generate("ES256", common_name="wire test DSC VN", country="VN",
                              dcc_types=("vaccination", "test", "recovery"))


@pytest.fixture
def authority(tmp_path, dsc):
    """The trust authority's key and a folder with the document signer's certificate."""
    assert main(["trust", "keygen", "--out", str(tmp_path / "auth")]) == 0
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "dsc.crt.pem").write_bytes(dsc.certificate.public_bytes(serialization.Encoding.PEM))
    return tmp_path / "auth"


def bundle(tmp_path: Path, authority: Path, version: int, *extra: str, key: Path | None = None) -> Path:
    """``kiosk trust build --certs ... --key ...``: a signed bundle file."""
    out = tmp_path / f"bundle-{version}-{len(list(tmp_path.glob('bundle-*')))}.json"
    assert main(["trust", "build", "--certs", str(tmp_path / "certs"), "--version", str(version),
                 "--key", str(key or authority / "authority.key.pem"), "--out", str(out), *extra]) == 0
    return out


def publish(broker, path: Path) -> None:
    assert main(["trust", "publish", "--broker", broker.url, str(path)]) == 0


def dcc(dsc, uvci=UVCI) -> str:
    now = datetime.now(timezone.utc)
    return issue_dcc(dsc, kind="vaccination", family="Trần", given="Thị Bình", dob="1990-01-01", at=now,
                     last_dose=now - timedelta(days=40), uvci=uvci)


def kiosk_cfg(tmp_path, broker, authority: Path, bundle_file: Path | None = None, centre_key=None):
    """A kiosk that trusts the authority key (and reads ``[trust] bundle`` when given); no duplicates."""
    signing.write_public_key(tmp_path / "centre.pub.pem", centre_key or signing.generate_key())
    cfg = kiosk_config(tmp_path, broker.url, policy="duplicate_window_minutes = 0",
                       extra=f'commands = ["reload-trust"]\ncentre_key = "{tmp_path / "centre.pub.pem"}"')
    path = Path(cfg.source_path)
    trust = f'[trust]\nauthority_key = "{authority / "authority.pub.pem"}"\n'
    if bundle_file is not None:
        trust += f'bundle = "{bundle_file}"\n'
    path.write_text(path.read_text(encoding="utf-8").replace("[trust]\n", trust), encoding="utf-8")
    return config.load(path)


def verdict(k: Running, payload: str):
    """Scan ``payload`` at the running kiosk; its check-in once the flow decided."""
    before = len(k.checkins)
    k.kiosk.code_seen(code(payload, at=__import__("time").monotonic()))
    assert wait_for(lambda: len(k.checkins) > before, 15)
    c = k.checkins[-1]
    return c.verdict, c.reason


def test_a_published_bundle_is_applied_and_a_newer_one_revokes_without_a_restart(tmp_path, broker, dsc, authority):
    k = Running(tmp_path, broker, cfg=kiosk_cfg(tmp_path, broker, authority))
    try:
        keeper = k.kiosk.stages.trust
        assert keeper.version is None
        assert verdict(k, dcc(dsc)) == ("reject", reasons.UNKNOWN_KEY)  # nobody told it about this signer

        publish(broker, bundle(tmp_path, authority, 1))
        assert wait_for(lambda: keeper.version == 1, 15)
        assert verdict(k, dcc(dsc)) == ("accept", reasons.OK)

        revoking = bundle(tmp_path, authority, 2, "--revoke-uvci", UVCI)
        publish(broker, revoking)
        assert wait_for(lambda: keeper.version == 2, 15)  # seconds, no restart
        assert verdict(k, dcc(dsc)) == ("reject", reasons.REVOKED)
        assert verdict(k, dcc(dsc, uvci="URN:UVCI:01:VN:WIRETEST000000000002")) == ("accept", reasons.OK)
    finally:
        k.stop()


def test_a_foreign_or_older_bundle_is_refused_and_the_last_good_one_stays(tmp_path, broker, dsc, authority):
    good = bundle(tmp_path, authority, 5, "--revoke-uvci", UVCI)
    k = Running(tmp_path, broker, cfg=kiosk_cfg(tmp_path, broker, authority, bundle_file=good))
    try:
        keeper, mailbox = k.kiosk.stages.trust, k.kiosk.remote.bundles
        assert keeper.version == 5  # [trust] bundle, loaded at start-up
        signing.write_private_key(tmp_path / "stranger.key.pem", signing.generate_key())
        # Built with the real tools, but signed by a key the kiosk was not provisioned with.
        publish(broker, bundle(tmp_path, authority, 6, key=tmp_path / "stranger.key.pem"))
        assert wait_for(lambda: len(mailbox.results) >= 1, 15)
        assert [(o.ok, o.reason) for _, o in mailbox.results] == [(False, "unknown-key")] and keeper.version == 5
        publish(broker, bundle(tmp_path, authority, 3))  # correctly signed, but older: a rollback
        assert wait_for(lambda: len(mailbox.results) >= 2, 15)
        assert (mailbox.results[-1][1].ok, mailbox.results[-1][1].reason) == (False, "rollback")
        assert keeper.version == 5
        assert verdict(k, dcc(dsc)) == ("reject", reasons.REVOKED)  # the last good bundle's revocation holds
    finally:
        k.stop()


def test_reload_trust_rereads_the_bundle_file(tmp_path, broker, dsc, authority):
    """The centre's signed reload-trust offers the configured bundle file again, without a restart."""
    centre_key = signing.generate_key()
    configured = tmp_path / "trust-bundle.json"
    configured.write_bytes(bundle(tmp_path, authority, 1).read_bytes())
    k = Running(tmp_path, broker, cfg=kiosk_cfg(tmp_path, broker, authority, bundle_file=configured,
                                                centre_key=centre_key))
    c = Centre(broker, k.cfg)
    try:
        keeper = k.kiosk.stages.trust
        assert keeper.version == 1 and verdict(k, dcc(dsc)) == ("accept", reasons.OK)
        configured.write_bytes(bundle(tmp_path, authority, 2, "--revoke-uvci", UVCI).read_bytes())
        topic, message, _ = signed_command("reload-trust", "", SITE, DEVICE, centre_key)
        c.publish(topic, message)
        assert c.wait(1)[0]["reason"] == "reloaded" and keeper.version == 2
        assert verdict(k, dcc(dsc)) == ("reject", reasons.REVOKED)
    finally:
        c.close()
        k.stop()


def test_bundle_topics_are_the_contracts():
    from kiosk.wire.topics import bundle_topic, bundle_topics

    # The publisher (kiosk trust publish) and the kiosk's subscriptions use the one definition: BRIEF contract 4.
    assert bundle_topics(SITE) == [bundle_topic(), bundle_topic(SITE)] == ["checkin/v1/trust/bundle",
                                                                          f"checkin/v1/{SITE}/trust/bundle"]
    assert BASE.startswith("checkin/v1/")
