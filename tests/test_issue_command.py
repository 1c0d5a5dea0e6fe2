"""``kiosk issue``: key generation and signed codes that a kiosk trusting the certificate accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _verify(capsys, trust, payload):
    rc = main(["verify", "--trust", str(trust), payload])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("alg", ["Ed25519", "ES256"])
def test_keygen_then_declaration_then_verify(tmp_path, capsys, alg):
    assert main(["issue", "keygen", "--out", str(tmp_path / "k"), "--alg", alg]) == 0
    out = capsys.readouterr().out
    key, cert = tmp_path / "k" / "issuer.key.pem", tmp_path / "k" / "issuer.crt.pem"
    assert key.stat().st_mode & 0o777 == 0o600 and cert.exists() and "kid:" in out
    assert b"PRIVATE KEY" not in cert.read_bytes()

    assert main(["issue", "declaration", "--key", str(key), "--status", "green", "--valid-hours", "24",
                 "--subject", "subj-42", "--png", str(tmp_path / "d.png")]) == 0
    payload = capsys.readouterr().out.strip()
    assert payload.startswith("HD1:")
    rc, line = _verify(capsys, cert, payload)
    assert rc == 0 and line["format"] == "health-declaration" and line["facts"]["status"] == "green"

    # The PNG holds the same payload, readable by the kiosk's decoder.
    import cv2
    import zxingcpp

    img = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_GRAYSCALE)
    assert [r.text for r in zxingcpp.read_barcodes(img)] == [payload]


def test_keygen_refuses_to_overwrite(tmp_path, capsys):
    assert main(["issue", "keygen", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "issuer.key.pem").read_bytes()
    assert main(["issue", "keygen", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "issuer.key.pem").read_bytes() == first
    assert main(["issue", "keygen", "--out", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "issuer.key.pem").read_bytes() != first


def test_declaration_errors_exit_2(tmp_path, capsys):
    assert main(["issue", "declaration", "--key", str(tmp_path / "none.pem"), "--status", "green",
                 "--subject", "s"]) == 2
    assert "none.pem" in capsys.readouterr().err
    main(["issue", "keygen", "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(["issue", "declaration", "--key", str(tmp_path / "issuer.key.pem"), "--status", "green",
                 "--subject", "has spaces"]) == 2
    assert "subject id" in capsys.readouterr().err


def test_demo_dcc_signer_issues_a_valid_vaccination(capsys):
    demo = ROOT / "config" / "demo-keys"
    assert main(["issue", "dcc", "--key", str(demo / "dcc-signer.key.pem"), "--kind", "vaccination",
                 "--family", "Trần", "--given", "Thị Bình", "--dob", "1988-03-14"]) == 0
    payload = capsys.readouterr().out.strip()
    rc, line = _verify(capsys, demo, payload)
    assert rc == 0 and line["format"] == "eu-dcc" and line["facts"]["type"] == "vaccination"
