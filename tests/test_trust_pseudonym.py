"""Pseudonyms: keyed, stable on one device, different across devices; the key is created 0600."""

from __future__ import annotations

import hashlib
import hmac
import stat

import pytest

from kiosk.config import parse
from kiosk.trust.pseudonym import Pseudonyms, load_or_create_key
from kiosk.secrets import SecretError
from kiosk.door.assembly import open_pseudonyms


def config(tmp_path, extra=""):
    return parse(f'[device]\nsite="hn"\nid="k1"\nstate_dir="{tmp_path}/state"\n'
                 f'[venue]\nid="V"\nname="N"\nqr_content="q"\n{extra}', str(tmp_path / "kiosk.toml"))


def test_key_created_private_on_first_start_and_reused(tmp_path):
    first = open_pseudonyms(config(tmp_path))
    key_file = tmp_path / "state" / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = open_pseudonyms(config(tmp_path))
    assert first.of("001099012345") == again.of("001099012345")


def test_pseudonym_is_hmac_sha256_of_the_identity(tmp_path):
    key = bytes(range(32))
    p = Pseudonyms(key)
    assert p.of("001099012345") == hmac.new(key, b"001099012345", hashlib.sha256).hexdigest()
    assert p.of("001099012345") != hashlib.sha256(b"001099012345").hexdigest()  # not a plain, guessable hash
    assert p.of("a") != p.of("b")
    assert "001099012345" not in repr(p) and key.hex() not in repr(p)


def test_two_devices_give_different_pseudonyms(tmp_path):
    a = open_pseudonyms(config(tmp_path / "a"))
    b = open_pseudonyms(config(tmp_path / "b"))
    assert a.of("001099012345") != b.of("001099012345")


def test_configured_key_file_and_credential(tmp_path, monkeypatch):
    (tmp_path / "k.hex").write_text("00" * 31 + "01\n")
    p = open_pseudonyms(config(tmp_path, '[ledger]\npseudonym_key_file="k.hex"\n'))
    assert p.of("x") == Pseudonyms(bytes(31) + b"\x01").of("x")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pseudonym-key").write_bytes(b"raw key bytes, not hex, long enough")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    q = open_pseudonyms(config(tmp_path, '[ledger]\npseudonym_key_file="credential:pseudonym-key"\n'))
    assert q.of("x") == Pseudonyms(b"raw key bytes, not hex, long enough").of("x")


def test_configured_key_file_created_when_missing(tmp_path):
    open_pseudonyms(config(tmp_path, '[ledger]\npseudonym_key_file="keys/device.key"\n'))
    assert stat.S_IMODE((tmp_path / "keys" / "device.key").stat().st_mode) == 0o600


def test_short_key_refused(tmp_path):
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(SecretError, match="shorter than 16 bytes"):
        load_or_create_key(tmp_path / "short")
