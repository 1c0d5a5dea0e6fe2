"""The kiosk's own signed health declaration (HD1:): issue, verify, and every way it can be wrong."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import cbor2
import pytest
import segno

from kiosk.issuing import cose as issuing_cose
from kiosk.wire import reasons
from kiosk.door.verify import base45, cose, declaration
from kiosk.door.verify.base import VerifyContext
from kiosk.door.verify.declaration import HealthDeclaration
from kiosk.issuing.declaration import DeclarationError, IssuerKey, issue
from kiosk.issuing.keys import KeyFileError
from kiosk.trust.store import TrustStore
from kiosk.door.verify.verifier import Verifier

NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)


def _key(*args, **kw):
    """An issuer key valid since 2020: the tests' clock is in 2021."""
    kw.setdefault("not_before", datetime(2020, 1, 1, tzinfo=timezone.utc))
    return IssuerKey.generate(*args, **kw)



@pytest.fixture(scope="module", params=["Ed25519", "ES256"])
def key(request):
    return _key(request.param)


def _issue(key, **kw):
    args = dict(status="green", declared_at=NOW - timedelta(hours=1), valid_until=NOW + timedelta(hours=23),
                declaration_id="D-0001", subject_id="subj-7f3a9c21")
    args.update(kw)
    return issue(key, **args)


def _check(payload, *keys, now=NOW):
    trust = TrustStore.from_certificates([k.certificate for k in keys])
    return HealthDeclaration().check(payload, VerifyContext(now=now, trust=trust, clock_skew_seconds=300))


def test_round_trip_with_facts_and_pseudonymous_identity(key):
    payload = _issue(key)
    assert payload.startswith("HD1:")
    check = _check(payload, key)
    assert check.valid and check.reason == reasons.OK and check.signed
    assert check.facts["status"] == "green" and check.facts["declaration_id"] == "D-0001"
    assert check.facts["valid_until"] == (NOW + timedelta(hours=23)).isoformat()
    assert check.identity == f"hd:{key.kid.hex()}:subj-7f3a9c21"
    # a declaration names nobody: the holder is only the issuer's subject id and the issuer's key id
    assert check.holder.name is None and check.holder.id_number is None and check.holder.phone is None
    assert (check.holder.subject_id, check.holder.subject_issuer) == ("subj-7f3a9c21", key.kid.hex())


@pytest.mark.parametrize("alg", ["Ed25519", "ES256"])
def test_fits_qr_version_10(alg):
    k = _key(alg)
    longest = _issue(k, declaration_id="D" * 32, subject_id="S" * 32, status="yellow")
    qr = segno.make(longest, error="m", micro=False)
    assert qr.version <= 10, f"{alg}: {len(longest)} characters need QR version {qr.version}"


def test_status_travels_and_the_policy_sees_it(key):
    for status in ("green", "yellow", "red"):
        assert _check(_issue(key, status=status), key).facts["status"] == status


def test_expired_not_yet_valid_and_skew(key):
    p = _issue(key)
    assert _check(p, key, now=NOW + timedelta(hours=24)).reason == reasons.EXPIRED
    assert _check(p, key, now=NOW - timedelta(hours=2)).reason == reasons.NOT_YET_VALID
    assert _check(p, key, now=NOW - timedelta(hours=1, seconds=100)).valid  # 100 s early: within the skew


def test_unknown_issuer_and_tampering(key):
    p = _issue(key)
    assert _check(p).reason == reasons.UNKNOWN_KEY
    stranger = _key(key.alg)
    assert _check(_issue(stranger), key).reason == reasons.UNKNOWN_KEY
    # Change one claim, keep the signature: the signature no longer verifies.
    msg = cbor2.loads(base45.decode(p[4:]))
    fields = list(msg.value)
    claims = cbor2.loads(fields[2])
    claims[declaration.K_STATUS] = "green" if claims[declaration.K_STATUS] != "green" else "red"
    fields[2] = cbor2.dumps(claims)
    forged = "HD1:" + base45.encode(cbor2.dumps(cbor2.CBORTag(18, fields)))
    assert _check(forged, key).reason == reasons.SIGNATURE_INVALID


def test_dcc_document_signer_may_not_sign_declarations():
    dsc = _key("ES256", dcc_types=("vaccination",))
    assert _check(_issue(dsc), dsc).reason == reasons.KEY_USAGE


def _signed_claims(key, claims) -> str:
    return "HD1:" + base45.encode(issuing_cose.sign1(cbor2.dumps(claims), key.private_key, key.alg, key.kid))


def test_bad_fields_are_schema_rejects(key):
    good = {0: 1, 1: "green", 2: "s", 3: "d", 4: int((NOW + timedelta(hours=1)).timestamp()),
            6: int((NOW - timedelta(hours=1)).timestamp())}
    assert _check(_signed_claims(key, good), key).valid
    for change in ({1: "purple"}, {0: 2}, {2: ""}, {3: 5}, {4: good[6] - 1}, {6: "yesterday"}, {2: "has space"}):
        assert _check(_signed_claims(key, {**good, **change}), key).reason == reasons.SCHEMA, change
    assert _check(_signed_claims(key, [1, 2, 3]), key).reason == reasons.SCHEMA


def test_ps256_is_not_a_declaration_algorithm():
    rsa_key = _key("PS256")
    with pytest.raises(DeclarationError):
        _issue(rsa_key)
    claims = {0: 1, 1: "green", 2: "s", 3: "d", 4: int(NOW.timestamp()) + 60, 6: int(NOW.timestamp()) - 60}
    assert _check(_signed_claims(rsa_key, claims), rsa_key).reason == reasons.SIGNATURE_INVALID


def test_issue_refuses_what_a_kiosk_would_reject(key):
    for bad in (dict(status="blue"), dict(subject_id="two words"), dict(declaration_id=""),
                dict(valid_until=NOW - timedelta(hours=2))):
        with pytest.raises(DeclarationError):
            _issue(key, **bad)
    with pytest.raises(DeclarationError):
        _issue(key, declared_at=datetime(2021, 1, 1), valid_until=datetime(2021, 1, 2))


def test_key_files_round_trip_and_trust_store_loads_the_certificate(tmp_path, key):
    key.save(tmp_path / "issuer.key.pem", tmp_path / "issuer.crt.pem")
    assert (tmp_path / "issuer.key.pem").stat().st_mode & 0o777 == 0o600
    loaded = IssuerKey.load(tmp_path / "issuer.key.pem")
    assert loaded.kid == key.kid and loaded.alg == key.alg
    trust = TrustStore.load([str(tmp_path / "issuer.crt.pem")])
    assert Verifier(trust).check(_issue(loaded), at=NOW).valid


def test_key_file_errors_name_the_path(tmp_path, key):
    for content in (b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n"):
        (tmp_path / "k.pem").write_bytes(content)
        with pytest.raises(KeyFileError, match="k.pem"):
            IssuerKey.load(tmp_path / "k.pem")
    other = _key("Ed25519")
    key.save(tmp_path / "a.key.pem", tmp_path / "a.crt.pem")
    other.save(tmp_path / "b.key.pem", tmp_path / "b.crt.pem")
    with pytest.raises(KeyFileError, match="does not belong"):
        IssuerKey.load(tmp_path / "a.key.pem", tmp_path / "b.crt.pem")
    with pytest.raises(KeyFileError, match="missing"):
        IssuerKey.load(tmp_path / "missing.pem")


def test_demo_keys_are_marked_and_work():
    from pathlib import Path

    demo = Path(__file__).resolve().parent.parent / "config" / "demo-keys"
    assert "never use in production" in (demo / "README.md").read_text().lower()
    key = IssuerKey.load(demo / "declaration-issuer.key.pem")
    assert "DEMO" in key.certificate.subject.rfc4514_string()
    trust = TrustStore.load([str(demo)])
    check = Verifier(trust).check(issue(key, status="green", declared_at=datetime.now(timezone.utc),
                                        valid_until=datetime.now(timezone.utc) + timedelta(hours=1),
                                        declaration_id="D-1", subject_id="s-1"))
    assert check.valid, check.detail
