"""Secrets from files and systemd credentials; messages never contain the secret."""

from __future__ import annotations

import logging

import pytest

from kiosk.secrets import SecretError, read_secret, read_secret_bytes, secret_path


def test_file_relative_to_config_folder(tmp_path):
    (tmp_path / "pw").write_text("s3cret-value\n")
    assert read_secret("pw", base=tmp_path) == "s3cret-value"
    assert read_secret(str(tmp_path / "pw")) == "s3cret-value"


def test_systemd_credential(tmp_path, monkeypatch):
    (tmp_path / "mqtt-password").write_bytes(b"hunter2")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret("credential:mqtt-password") == "hunter2"
    assert secret_path("credential:mqtt-password") == tmp_path / "mqtt-password"


def test_credential_without_systemd_is_explained(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(SecretError, match="CREDENTIALS_DIRECTORY is not set"):
        read_secret("credential:mqtt-password")


@pytest.mark.parametrize("ref", ["credential:../etc/shadow", "credential:a/b", "credential:", "credential:.."])
def test_credential_names_cannot_escape_the_directory(ref, tmp_path, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(SecretError, match="not a valid credential name"):
        read_secret(ref)


def test_errors_name_the_reference_never_the_value(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    (tmp_path / "bad").write_bytes(b"\xff\xfe-topsecret")
    (tmp_path / "empty").write_text("\n")
    for ref, pattern in (("bad", "not UTF-8"), ("empty", "is empty"), ("missing", "no such file")):
        with pytest.raises(SecretError, match=pattern) as exc:
            read_secret(ref, base=tmp_path)
        assert "topsecret" not in str(exc.value) and ref in str(exc.value)
    assert "topsecret" not in caplog.text
    assert read_secret_bytes("bad", base=tmp_path).endswith(b"topsecret")


def test_unreadable_file(tmp_path):
    with pytest.raises(SecretError, match="is a directory"):
        read_secret(str(tmp_path))


def test_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pw"
    os.mkfifo(fifo)
    with pytest.raises(SecretError, match="not a regular file"):
        read_secret(str(fifo))


def test_credential_falls_back_to_the_credential_store_outside_systemd(tmp_path, monkeypatch):
    """`sudo kiosk config check` outside the service sees the password kiosk.service loads."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setattr("kiosk.secrets.CREDSTORE", str(tmp_path))
    (tmp_path / "password").write_text("from-the-store\n")
    assert read_secret("credential:mqtt_password") == "from-the-store"
    with pytest.raises(SecretError, match="CREDENTIALS_DIRECTORY is not set"):
        read_secret("credential:mqtt_other")
