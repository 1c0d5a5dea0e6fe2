"""The signed trust bundle: build -> sign -> verify -> a kiosk's keeper applies it -> codes verify.

Certificates are issued here (never a country's real ones); the clock is the
real one, since bundles are issued now. Refusals keep the last good bundle.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.wire import reasons, signing
from kiosk.door.show import reason_text
from kiosk.cli import main
from kiosk.door.verify.base import CodeCheck
from kiosk.issuing import bundle as tools
from kiosk.issuing.dcc import issue_dcc
from kiosk.issuing.declaration import issue
from kiosk.issuing.keys import IssuerKey
from kiosk.door.decide.policy import Policy
from kiosk.testing.clock import FakeClock
from kiosk.trust.bundle import STATE_FILE, TrustKeeper
from kiosk.door.verify.verifier import Verifier

NOW = datetime.now(timezone.utc).replace(microsecond=0)
AUTHORITY = signing.generate_key()
RING = signing.KeyRing.of({"trust-authority": AUTHORITY.public_key()})
DSC = IssuerKey.generate("ES256", common_name="test DSC VN", country="VN", dcc_types=("vaccination", "test", "recovery"))
UVCI = "URN:UVCI:01:VN:TESTBUNDLE0000000001"


def _payload(**kw):
    kw.setdefault("uvci", UVCI)
    return issue_dcc(DSC, kind="vaccination", family="Trần", given="Thị Bình", dob="1990-01-01", at=NOW,
                     last_dose=NOW - timedelta(days=40), **kw)


def _bundle(version, signers=None, key=AUTHORITY, **kw) -> bytes:
    signers = signers if signers is not None else [tools.entry_of(DSC.certificate)]
    return tools.sign(tools.build(signers=signers, version=version, issued_at=kw.pop("issued_at", NOW), **kw), key)


def _keeper(tmp_path=None, **kw) -> TrustKeeper:
    return TrustKeeper(RING, state_dir=tmp_path, **kw)


def test_round_trip_from_a_national_trust_list_export(tmp_path, capsys):
    """kiosk trust keygen/build/sign/verify, then a keeper loads the file and a DCC is accepted."""
    assert main(["trust", "keygen", "--out", str(tmp_path / "auth")]) == 0
    key, pub = tmp_path / "auth" / "authority.key.pem", tmp_path / "auth" / "authority.pub.pem"
    assert key.stat().st_mode & 0o777 == 0o600 and b"PRIVATE" not in pub.read_bytes()
    # The common shape of a national public export: entries with kid, country and the DER certificate.
    export = {"certificates": [{"certificateType": "DSC", "country": "VN", "kid": base64.b64encode(DSC.kid).decode(),
                                "rawData": base64.b64encode(DSC.certificate_der).decode()},
                               {"certificateType": "CSCA", "country": "VN", "kid": "AAAA", "rawData": "AAAA"}]}
    (tmp_path / "export.json").write_text(json.dumps(export))
    vs = tmp_path / "valuesets"
    vs.mkdir()
    (vs / "vaccine-mah-manf.json").write_text(json.dumps({"valueSetId": "x", "valueSetValues": {"ORG-100030215": {}}}))
    capsys.readouterr()
    assert main(["trust", "build", "--trust-list", str(tmp_path / "export.json"), "--valuesets", str(vs),
                 "--version", "7", "--out", str(tmp_path / "unsigned.json")]) == 0
    assert main(["trust", "sign", "--key", str(key), str(tmp_path / "unsigned.json"),
                 "--out", str(tmp_path / "bundle.json")]) == 0
    capsys.readouterr()
    assert main(["trust", "verify", "--authority-key", str(pub), str(tmp_path / "bundle.json")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] and summary["version"] == 7 and summary["signers"] == 1
    assert summary["valuesets"] == ["valuesets/vaccine-mah-manf.json"]

    keeper = TrustKeeper(signing.KeyRing.load([pub]), state_dir=tmp_path / "state")
    offered = keeper.load_file(tmp_path / "bundle.json")
    assert offered.ok and offered.reason == "applied" and keeper.version == 7
    check = Verifier(keeper).check(_payload())
    assert check.valid and check.reason == reasons.OK and check.facts["issuer_country"] == "VN"
    assert Policy().decide(check, NOW) == ("accept", reasons.OK)
    assert keeper.version == 7 and keeper.stale is False and keeper.age_hours < 1
    # An unsigned build is not a bundle for a kiosk.
    assert keeper.load_file(tmp_path / "unsigned.json").reason == reasons.UNSIGNED
    assert keeper.version == 7


def test_a_newer_bundle_that_revokes_the_uvci_makes_the_same_code_revoked(tmp_path):
    keeper = _keeper(tmp_path)
    verifier = Verifier(keeper)
    payload = _payload()
    assert keeper.offer(_bundle(1), "test").ok
    assert verifier.check(payload).valid
    assert keeper.offer(_bundle(2, revocation={"uvci": [tools.uvci_hash(UVCI)]}), "test").ok
    check = verifier.check(payload)
    assert not check.valid and check.reason == reasons.REVOKED and "uvci" in check.detail
    assert Policy().decide(check, NOW) == ("reject", reasons.REVOKED)
    # Another certificate of the same signer is untouched.
    assert verifier.check(_payload(uvci="URN:UVCI:01:VN:OTHER")).valid


@pytest.mark.parametrize("kind", ["country_uvci", "signature", "truncated"])
def test_every_eu_revocation_hash_type(tmp_path, kind):
    payload = _payload()
    keeper = _keeper()
    keeper.offer(_bundle(1), "test")
    hashes = Verifier(keeper).check(payload).facts["revocation"]
    entry = {"country_uvci": ("country_uvci", hashes["country_uvci"]), "signature": ("signature", hashes["signature"]),
             "truncated": ("uvci", hashes["uvci"][:32])}[kind]  # lists may hold the first 128 bits
    assert hashes["country_uvci"] == tools.uvci_hash(UVCI, "VN")
    assert keeper.offer(_bundle(2, revocation={entry[0]: [entry[1]]}), "test").ok
    assert Verifier(keeper).check(payload).reason == reasons.REVOKED


def test_an_expired_signer_certificate_is_refused():
    old = IssuerKey.generate("ES256", dcc_types=("vaccination",), not_before=NOW - timedelta(days=400),
                             not_after=NOW - timedelta(days=30))
    keeper = _keeper()
    assert keeper.offer(_bundle(1, signers=[tools.entry_of(old.certificate)]), "test").ok
    fresh = issue_dcc(old, family="A", given="B", dob="1990-01-01", at=NOW)  # signed after the certificate expired
    check = Verifier(keeper).check(fresh)
    assert not check.valid and check.reason == reasons.SIGNATURE_INVALID and "expired" in check.detail
    # A code it signed while it was valid still verifies (the certificate is checked at issue time).
    earlier = issue_dcc(old, family="A", given="B", dob="1990-01-01", at=NOW - timedelta(days=60),
                        last_dose=NOW - timedelta(days=90))
    assert Verifier(keeper).check(earlier).valid
    # The bundle may narrow a signer's validity (the authority withdrew it early), never widen it.
    entry = tools.entry_of(DSC.certificate)
    entry["not_after"] = signing.iso(NOW - timedelta(days=1))
    keeper.offer(_bundle(2, signers=[entry]), "test")
    assert Verifier(keeper).check(_payload()).reason == reasons.SIGNATURE_INVALID


def test_bad_bundles_are_refused_and_the_last_good_one_stays(tmp_path):
    keeper = _keeper(tmp_path)
    good = _bundle(10)
    assert keeper.offer(good, "file").reason == "applied"
    saved = (tmp_path / STATE_FILE).read_bytes()
    stranger = signing.generate_key()
    body = json.loads(good)
    body["version"] = 11
    tampered = json.dumps(body).encode()
    cases = {
        "unknown-key": _bundle(11, key=stranger),
        "rollback": _bundle(9),
        "same-version": _bundle(10, revocation={"uvci": [tools.uvci_hash(UVCI)]}),
        "bad-signature": tampered,
        "expired": _bundle(12, issued_at=NOW - timedelta(days=10), valid_days=2),
        "not-yet-valid": _bundle(13, issued_at=NOW + timedelta(days=1)),
        "wrong-site": _bundle(14, site="another-site"),
        "malformed": b"{not json",
        "too-large": b" " * (16 * 1024 * 1024 + 1),
    }
    for reason, data in cases.items():
        offered = keeper.offer(data, "test")
        assert not offered.ok and offered.reason == reason, (reason, offered)
        assert keeper.version == 10 and Verifier(keeper).check(_payload()).valid
    assert (tmp_path / STATE_FILE).read_bytes() == saved
    # The same bytes again (a retained message after every reconnect) are fine and change nothing.
    assert keeper.offer(good, "mqtt").reason == "unchanged"


def test_the_last_good_bundle_survives_a_restart(tmp_path):
    first = _keeper(tmp_path)
    first.offer(_bundle(5, revocation={"uvci": [tools.uvci_hash(UVCI)]}), "mqtt")
    again = _keeper(tmp_path)
    assert again.version is None
    assert again.restore().ok and again.version == 5
    assert Verifier(again).check(_payload()).reason == reasons.REVOKED
    # A restored bundle that expired while the kiosk was off is applied and shown stale, not dropped.
    later = _keeper(tmp_path, clock=lambda: (NOW + timedelta(days=30)).timestamp())
    assert later.restore().ok and later.stale
    assert Verifier(later).check(_payload()).reason == reasons.TRUST_STALE


def test_stale_trust_rejects_signed_codes_only(tmp_path):
    now = FakeClock(NOW.timestamp())
    keeper = _keeper(max_age_hours=24, clock=now)
    keeper.offer(_bundle(1), "test")
    verifier = Verifier(keeper)
    unsigned = "001088012345|Nguyễn Văn An|01/02/1988|CCCD|QID-7F3A9C21|0123456789<0912345678<1<<"
    assert verifier.check(_payload()).valid and not keeper.stale
    now.advance(25 * 3600)
    assert keeper.stale and keeper.age_hours > 24
    check = verifier.check(_payload())
    assert not check.valid and check.reason == reasons.TRUST_STALE
    assert reason_text.words(reasons.TRUST_STALE, "en") != reasons.TRUST_STALE  # the screen has words for it
    assert verifier.check(unsigned).valid  # nothing to trust in an unsigned code: format only, as before
    assert verifier.check("HC1:NCFTW2").reason == reasons.MALFORMED  # unreadable stays unreadable
    keeper.offer(_bundle(2, issued_at=now.utc()), "test")
    assert not keeper.stale and verifier.check(_payload()).valid


def test_value_sets_are_facts_and_the_policy_restricts_explicitly():
    keeper = _keeper()
    known = {"vaccine-mah-manf": ["ORG-100030215"]}
    keeper.offer(_bundle(1, valuesets=known), "test")
    assert Verifier(keeper).check(_payload()).facts["valueset_unknown"] == []
    unknown_ma = dict(issuing_vaccination(), **{})
    unknown_ma["v"][0]["ma"] = "ORG-NOT-IN-ANY-SET"
    payload = issue_dcc(DSC, dcc=unknown_ma, at=NOW)
    check = Verifier(keeper).check(payload)
    assert check.valid and check.reason == reasons.OK and check.facts["valueset_unknown"] == ["v/0/ma"]
    assert check.facts["ma"] == "ORG-NOT-IN-ANY-SET"
    assert Policy().decide(check, NOW) == ("accept", reasons.OK)
    assert Policy(dcc_manufacturers=("ORG-100030215",)).decide(check, NOW) == ("reject", reasons.policy("manufacturer"))
    assert Policy(dcc_products=("EU/1/20/1528",)).decide(check, NOW) == ("accept", reasons.OK)
    assert Policy(dcc_products=("EU/1/21/1529",)).decide(check, NOW) == ("reject", reasons.policy("product"))
    # A newer bundle's value sets hold the manufacturer: the same code has no unknown value then.
    keeper.offer(_bundle(2, valuesets={"vaccine-mah-manf": ["ORG-100030215", "ORG-NOT-IN-ANY-SET"]}), "test")
    assert Verifier(keeper).check(payload).facts["valueset_unknown"] == []
    # Without bundle value sets the shipped snapshot judges (it lacks this code too).
    keeper.offer(_bundle(3), "test")
    assert Verifier(keeper).check(payload).facts["valueset_unknown"] == ["v/0/ma"]


def issuing_vaccination():
    from kiosk.issuing.dcc import vaccination

    return vaccination("Trần", "Thị Bình", "1990-01-01", dose_date=(NOW - timedelta(days=40)).date().isoformat(),
                       uvci=UVCI)


def test_the_bundle_may_carry_venue_policy_rules():
    keeper = _keeper()
    policy = Policy(trust=keeper)
    keeper.offer(_bundle(1), "test")
    check = Verifier(keeper).check(_payload())
    assert policy.decide(check, NOW) == ("accept", reasons.OK)
    keeper.offer(_bundle(2, policy={"dcc_products": ["EU/1/21/1529"]}), "test")
    assert policy.decide(check, NOW) == ("reject", reasons.policy("product"))
    with pytest.raises(tools.BundleBuildError, match="no_such_rule"):
        tools.build(policy={"no_such_rule": True})
    body = tools.build(signers=[tools.entry_of(DSC.certificate)], version=3, issued_at=NOW)
    body["policy"] = {"no_such_rule": True}  # an authority tool that checks less than ours
    assert keeper.offer(tools.sign(body, AUTHORITY), "test").reason == "malformed"
    assert keeper.version == 2


def test_declaration_issuers_come_with_the_bundle():
    hd = IssuerKey.generate("Ed25519")
    code = issue(hd, status="green", declared_at=NOW - timedelta(hours=1), valid_until=NOW + timedelta(hours=23),
                 declaration_id="D-1", subject_id="s-1")
    keeper = _keeper()
    keeper.offer(_bundle(1, declaration_issuers=[tools.entry_of(hd.certificate)]), "test")
    assert Verifier(keeper).check(code).valid
    # A key listed as a declaration issuer does not sign DCCs, and a document signer no declarations.
    as_dsc = issue(DSC, status="green", declared_at=NOW - timedelta(hours=1), valid_until=NOW + timedelta(hours=1),
                   declaration_id="D-2", subject_id="s-2")
    assert Verifier(keeper).check(as_dsc).reason == reasons.UNKNOWN_KEY
    hd_dcc = IssuerKey.generate("ES256")
    keeper.offer(_bundle(2, declaration_issuers=[tools.entry_of(hd_dcc.certificate)]), "test")
    dcc_by_issuer = issue_dcc(hd_dcc, family="A", given="B", dob="1990-01-01", at=NOW)
    assert Verifier(keeper).check(dcc_by_issuer).reason == reasons.UNKNOWN_KEY
    keeper.offer(_bundle(3, revocation={"declaration": [tools.uvci_hash("D-1")]},
                         declaration_issuers=[tools.entry_of(hd.certificate)]), "test")
    assert Verifier(keeper).check(code).reason == reasons.REVOKED


def test_issuer_country_is_the_signers_not_the_issuer_name():
    payload = _payload(claims={1: "Ministry of Health"})  # an issuer name where the country belongs
    keeper = _keeper()
    keeper.offer(_bundle(1, signers=[dict(tools.entry_of(DSC.certificate), country="VN")]), "test")
    facts = Verifier(keeper).check(payload).facts
    assert facts["issuer_country"] == "VN" and facts["issuer"] == "Ministry of Health (demo)"


def test_checks_read_one_snapshot_while_bundles_are_applied():
    """A check never sees half a bundle: each answer is the old bundle's or the new one's."""
    keeper = _keeper()
    keeper.offer(_bundle(1), "test")
    verifier = Verifier(keeper)
    payload = _payload()
    revoked = [_bundle(v, revocation={"uvci": [tools.uvci_hash(UVCI)]} if v % 2 else None) for v in range(2, 40)]
    seen: set[str] = set()
    done = threading.Event()

    def check_loop():
        while not done.is_set():
            seen.add(verifier.check(payload).reason)

    readers = [threading.Thread(target=check_loop) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        assert all(keeper.offer(data, "test").ok for data in revoked)
    finally:
        done.set()
        for t in readers:
            t.join(10)
    assert seen <= {reasons.OK, reasons.REVOKED} and keeper.version == 39


def test_verify_command_uses_a_bundle(tmp_path, capsys):
    (tmp_path / "auth.pub.pem").write_bytes(signing.public_pem(AUTHORITY))
    (tmp_path / "b.json").write_bytes(_bundle(3, revocation={"uvci": [tools.uvci_hash(UVCI)]}))
    rc = main(["verify", "--bundle", str(tmp_path / "b.json"), "--authority-key", str(tmp_path / "auth.pub.pem"),
               _payload(), _payload(uvci="URN:UVCI:01:VN:OTHER")])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 1 and [x["reason"] for x in lines] == [reasons.REVOKED, reasons.OK]
    stranger = tmp_path / "stranger.pub.pem"
    stranger.write_bytes(signing.public_pem(signing.generate_key()))
    assert main(["verify", "--bundle", str(tmp_path / "b.json"), "--authority-key", str(stranger), _payload()]) == 2
    assert "unknown-key" in capsys.readouterr().err


def test_publish_retained_on_the_fleet_topic(tmp_path, broker, capsys):
    import paho.mqtt.client as mqtt

    (tmp_path / "b.json").write_bytes(_bundle(4))
    (tmp_path / "auth.pub.pem").write_bytes(signing.public_pem(AUTHORITY))
    assert main(["trust", "publish", "--broker", broker.url, "--authority-key", str(tmp_path / "auth.pub.pem"),
                 str(tmp_path / "b.json")]) == 0
    got: list[tuple[str, bytes, bool]] = []
    arrived = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *a: c.subscribe("checkin/v1/+/bundle", qos=1)
    client.on_message = lambda c, u, m: (got.append((m.topic, m.payload, m.retain)), arrived.set())
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert arrived.wait(10), "no retained bundle"
    finally:
        client.disconnect()
        client.loop_stop()
    topic, payload, retained = got[0]
    assert topic == "checkin/v1/trust/bundle" and retained and payload == (tmp_path / "b.json").read_bytes()
    keeper = _keeper()
    assert keeper.offer(payload, topic).ok and keeper.version == 4
    # A bundle the authority key does not sign is never published.
    (tmp_path / "bad.json").write_bytes(_bundle(5, key=signing.generate_key()))
    assert main(["trust", "publish", "--broker", broker.url, "--authority-key", str(tmp_path / "auth.pub.pem"),
                 str(tmp_path / "bad.json")]) == 2


def test_build_tool_errors_name_the_file(tmp_path, capsys):
    (tmp_path / "export.json").write_text('{"certificates": [{"kid": "AA==", "rawData": "not base64!"}]}')
    assert main(["trust", "build", "--trust-list", str(tmp_path / "export.json"), "--out", str(tmp_path / "o")]) == 2
    assert "export.json: entry 0" in capsys.readouterr().err
    (tmp_path / "rev.txt").write_text("uvci nothex\n")
    assert main(["trust", "build", "--revocation", str(tmp_path / "rev.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "rev.txt" in capsys.readouterr().err
    assert main(["trust", "verify", "--authority-key", "/nonexistent.pem", "/dev/null"]) == 2
    assert main(["trust", "sign", "--key", str(tmp_path / "nokey"), str(tmp_path / "rev.txt"), "--out", "x"]) == 2


def test_keeper_from_config_prefers_the_bundle_and_keeps_paths_as_fallback(tmp_path):
    from kiosk import config as config_mod
    from kiosk.door.assembly import load_trust

    (tmp_path / "auth.pub.pem").write_bytes(signing.public_pem(AUTHORITY))
    DSC.save(tmp_path / "dsc.key.pem", tmp_path / "dsc.crt.pem")
    (tmp_path / "k.toml").write_text(_config_text(tmp_path, bundle=""))
    keeper = load_trust(config_mod.load(tmp_path / "k.toml"))
    assert keeper.version is None and Verifier(keeper).check(_payload()).valid  # the plain file
    (tmp_path / "b.json").write_bytes(_bundle(8, signers=[]))
    (tmp_path / "k.toml").write_text(_config_text(tmp_path, bundle="b.json"))
    keeper = load_trust(config_mod.load(tmp_path / "k.toml"))
    assert keeper.version == 8 and Verifier(keeper).check(_payload()).reason == reasons.UNKNOWN_KEY
    assert (tmp_path / "state" / STATE_FILE).exists()


def _config_text(tmp_path: Path, bundle: str) -> str:
    return f"""
[device]
site = "s1"
id = "k1"
state_dir = "{tmp_path / 'state'}"

[venue]
id = "v1"
name = "Test venue"
qr_content = "https://example.com/v1"

[trust]
paths = ["dsc.crt.pem"]
bundle = "{bundle}"
authority_key = "auth.pub.pem"
"""


def test_check_result_type_is_unchanged():
    assert isinstance(Verifier(_keeper()).check(_payload()), CodeCheck)
