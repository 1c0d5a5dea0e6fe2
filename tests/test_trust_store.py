"""The trust store: PEM, DER, folders and trust-list JSON; clear errors for anything else."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization

from kiosk.issuing import dcc as issuing
from kiosk.door.verify import dcc
from kiosk.issuing.keys import IssuerKey
from kiosk.trust.store import TrustError, TrustStore, kid_of, trust_list_json
from kiosk.door.verify.verifier import Verifier

NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)


def _key(*args, **kw):
    """An issuer key valid since 2020: the tests' clock is in 2021."""
    kw.setdefault("not_before", datetime(2020, 1, 1, tzinfo=timezone.utc))
    return IssuerKey.generate(*args, **kw)



@pytest.fixture(scope="module")
def dsc():
    return _key("ES256", dcc_types=("vaccination", "test"))


def _der(key):
    return key.certificate.public_bytes(serialization.Encoding.DER)


def test_kid_is_first_8_bytes_of_sha256_of_der(dsc):
    import hashlib

    assert kid_of(_der(dsc)) == hashlib.sha256(_der(dsc)).digest()[:8] == dsc.kid


def test_pem_der_folder_and_trust_list_all_load(tmp_path, dsc):
    other = _key("Ed25519")
    (tmp_path / "a.pem").write_bytes(dsc.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "b.der").write_bytes(_der(other))
    for path in (tmp_path / "a.pem", tmp_path / "b.der"):
        assert len(TrustStore.load([path])) == 1
    folder = TrustStore.load([tmp_path])
    assert len(folder) == 2 and folder.find(dsc.kid) and folder.find(other.kid)
    assert folder.find(dsc.kid)[0].dcc_types == frozenset({"vaccination", "test"})
    assert folder.find(other.kid)[0].dcc_types is None

    doc = json.loads(trust_list_json(folder, issued_at=NOW - timedelta(days=3)))
    (tmp_path / "list.json").write_text(json.dumps(doc))
    listed = TrustStore.load([tmp_path / "list.json"])
    assert {s.kid for s in listed.signers()} == {dsc.kid, other.kid}
    assert listed.issued_at == NOW - timedelta(days=3) and listed.age_days > 3


def test_trust_list_kid_and_country_are_used(tmp_path, dsc):
    custom_kid = b"\x01" * 8
    (tmp_path / "tl.json").write_text(json.dumps({"certificates": [
        {"kid": base64.b64encode(custom_kid).decode(), "country": "VN", "certificate": base64.b64encode(_der(dsc)).decode()}]}))
    store = TrustStore.load([tmp_path / "tl.json"])
    assert store.find(custom_kid)[0].country == "VN" and not store.find(dsc.kid)


def test_a_loaded_store_verifies_codes(tmp_path, dsc):
    (tmp_path / "dsc.pem").write_bytes(dsc.certificate.public_bytes(serialization.Encoding.PEM))
    payload = issuing.issue_dcc(dsc, family="A", given="B", dob="1990-01-01", at=NOW)
    assert Verifier(TrustStore.load([tmp_path])).check(payload, at=NOW).valid
    assert not Verifier(TrustStore.empty()).check(payload, at=NOW).valid


def test_several_pem_blocks_in_one_file_and_key_files_skipped(tmp_path, dsc):
    other = _key("ES256")
    bundle = b"".join(k.certificate.public_bytes(serialization.Encoding.PEM) for k in (dsc, other))
    (tmp_path / "bundle.pem").write_bytes(bundle)
    other.save(tmp_path / "other.key.pem", tmp_path / "other.crt.pem")
    store = TrustStore.load([tmp_path])
    assert len(store) == 2  # the bundle's two; other.crt.pem repeats one; the key file is skipped


def test_empty_store():
    store = TrustStore.empty()
    assert len(store) == 0 and store.age_days is None and store.find(b"12345678") == []


@pytest.mark.parametrize("name,content,message", [
    ("garbage.pem", b"not a certificate", "not a PEM or DER"),
    ("broken.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "bad PEM"),
    ("key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no certificate"),
    ("list.json", b"{not json", "not a JSON trust list"),
    ("list2.json", b'{"certificates": {}}', "certificates"),
    ("list3.json", b'{"certificates": [{"certificate": "!!"}]}', r"certificates\[0\]"),
    ("list4.json", b'{"issued_at": "soon", "certificates": []}', "issued_at"),
])
def test_bad_files_raise_a_value_error_naming_the_path(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(TrustError, match=message) as info:
        TrustStore.load([tmp_path / name])
    assert isinstance(info.value, ValueError) and str(tmp_path / name) in str(info.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(TrustError, match="cannot read"):
        TrustStore.load([tmp_path / "nope.pem"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrustError, match="no certificates"):
        TrustStore.load([tmp_path / "empty"])
