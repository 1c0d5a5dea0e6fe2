"""Identity normalisation (issue 11.5) and bounded integers (issue 11.12), as properties.

One citizen is one visitor: full-width digits, composed or decomposed
Vietnamese and any letter case give one pseudonym; a number written in other
Unicode digits (Arabic-Indic, Devanagari...) is ``malformed``, always. A huge
integer gives one reason whatever its size, signed or not, and never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
import zlib
from datetime import datetime, timedelta, timezone

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.wire import reasons
from kiosk.door.verify import base45, dcc
from kiosk.issuing import cose as issuing_cose
from kiosk.issuing.dcc import issue_dcc, vaccination
from kiosk.issuing.keys import IssuerKey
from kiosk.trust.pseudonym import Pseudonyms
from kiosk.trust.store import TrustStore
from kiosk.door.verify.verifier import Verifier

NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)
DSC = IssuerKey.generate("ES256", dcc_types=("vaccination",), not_before=datetime(2020, 1, 1, tzinfo=timezone.utc))
VERIFIER = Verifier(TrustStore.from_certificates([DSC.certificate]))
PSEUDONYMS = Pseudonyms(b"k" * 32)
CCCD = "001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền, Hoàn Kiếm, Hà Nội|15082021"
PC_COVID = "001088012345|Nguyễn Văn An|01/02/1988|CCCD|QID-7F3A9C21|0123456789<0912345678<1<<"
# Unicode decimal digit sets that NFKC leaves alone (full-width digits it maps to ASCII).
FOREIGN_ZEROS = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1040, 0x17E0, 0x1810, 0x07C0]
FULLWIDTH_ZERO = 0xFF10


def _pseudonym(payload: str) -> str | None:
    check = VERIFIER.check(payload, at=NOW)
    return PSEUDONYMS.of(check.identity) if check.valid else None


def _digits(text: str, zero: int, positions) -> str:
    return "".join(chr(zero + int(c)) if i in positions and c.isascii() and c.isdigit() else c
                   for i, c in enumerate(text))


@settings(max_examples=60, deadline=None)
@given(positions=st.sets(st.integers(0, 11), min_size=1), form=st.sampled_from(["NFC", "NFD"]))
def test_full_width_digits_and_either_unicode_form_are_the_same_visitor(positions, form):
    expected = _pseudonym(CCCD)
    assert expected is not None and _pseudonym(PC_COVID) == expected  # one citizen, two codes
    for payload in (CCCD, PC_COVID):
        variant = unicodedata.normalize(form, _digits(payload, FULLWIDTH_ZERO, positions))
        assert _pseudonym(variant) == expected


@settings(max_examples=80, deadline=None)
@given(positions=st.sets(st.integers(0, 11), min_size=1), zero=st.sampled_from(FOREIGN_ZEROS),
       fmt=st.sampled_from(["cccd", "pc-covid"]))
def test_id_numbers_in_other_digits_are_malformed_never_a_second_visitor(positions, zero, fmt):
    payload = _digits(CCCD if fmt == "cccd" else PC_COVID, zero, positions)
    check = VERIFIER.check(payload, at=NOW)
    assert (check.format, check.valid, check.reason) == (fmt, False, reasons.MALFORMED)


VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
NAME = st.lists(st.text(VIETNAMESE, min_size=1, max_size=7), min_size=1, max_size=4).map(" ".join)


def _strip_accents(text: str) -> str:
    s = unicodedata.normalize("NFD", text).replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in s if not unicodedata.combining(c))


@settings(max_examples=100, deadline=None)
@given(family=NAME, given_name=NAME)
def test_dcc_names_compare_case_and_accent_insensitively(family, given_name):
    base = dcc.identity({"nam": {"fn": family, "gn": given_name}, "dob": "1990-01-01"})
    for f, g in ((family.upper(), given_name.upper()), (_strip_accents(family), _strip_accents(given_name)),
                 (unicodedata.normalize("NFD", family), unicodedata.normalize("NFD", given_name)),
                 (_strip_accents(family).upper(), given_name.title())):
        assert dcc.identity({"nam": {"fn": f, "gn": g}, "dob": "1990-01-01"}) == base
    # The ICAO transliteration the issuer writes (fnt/gnt) wins and agrees.
    icao = {"fnt": dcc.name_key(family), "gnt": dcc.name_key(given_name), "fn": family, "gn": given_name}
    assert dcc.identity({"nam": icao, "dob": "1990-01-01"}) == base


def test_a_dcc_date_of_birth_in_other_digits_is_a_schema_reject():
    ok = vaccination("Trần", "Bình", "1990-01-01", dose_date="2021-10-01")
    odd = vaccination("Trần", "Bình", "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in "1990-01-01"),
                      dose_date="2021-10-01")
    assert VERIFIER.check(issue_dcc(DSC, dcc=ok, at=NOW), at=NOW).valid
    check = VERIFIER.check(issue_dcc(DSC, dcc=odd, at=NOW), at=NOW)
    assert check.reason == reasons.SCHEMA and "dob" in check.detail


def test_pseudonyms_are_taken_of_the_nfkc_form():
    assert PSEUDONYMS.of("vn-id:００１０８８０１２３４５") == PSEUDONYMS.of("vn-id:001088012345")


# -- bounded integers ------------------------------------------------------------------------

def _bignum_dcc(nbytes: int, where: str) -> str:
    """A DCC signed by the trusted DSC with an ``nbytes``-byte integer (CBOR bignum) in one field."""
    big = cbor2.CBORTag(2, b"\x7f" + b"\xff" * (nbytes - 1))
    body = vaccination("A", "B", "1990-01-01", dose_date="2021-10-01")
    claims = {1: "VN", 4: int((NOW + timedelta(days=30)).timestamp()), 6: int(NOW.timestamp()), -260: {1: body}}
    if where == "dn":
        body["v"][0]["dn"] = big
    elif where == "exp":
        claims[4] = big
    else:
        body["extra"] = big
    signed = issuing_cose.sign1(cbor2.dumps(claims), DSC.private_key, DSC.alg, DSC.kid)
    return dcc.PREFIX + base45.encode(zlib.compress(signed, 9))


@pytest.mark.parametrize("where", ["dn", "exp", "extra"])
def test_a_huge_integer_in_a_trusted_dcc_gives_one_reason_whatever_its_size(where):
    answers = set()
    for nbytes in (9, 64, 2000, 20000):
        check = VERIFIER.check(_bignum_dcc(nbytes, where), at=NOW)
        answers.add((check.format, check.reason, check.detail))
    assert answers == {("eu-dcc", reasons.MALFORMED, "CBOR integer larger than 64 bits")}
    # 64-bit integers are still read as what they are (the schema bounds a dose number below only).
    body = vaccination("A", "B", "1990-01-01", dose_date="2021-10-01")
    body["v"][0]["dn"] = 2**64 - 1
    check = VERIFIER.check(issue_dcc(DSC, dcc=body, at=NOW), at=NOW)
    assert check.valid and check.facts["dn"] == 2**64 - 1


@pytest.mark.parametrize("template", [
    "{n}|012345678|Nguyễn Văn An|01021988|Nam|Hà Nội|15082021",  # CCCD: the ID number
    "001088012345|{n}|Nguyễn Văn An|01021988|Nam|Hà Nội|15082021",  # CCCD: the old ID
    "001088012345|012345678|Nguyễn Văn An|{n}|Nam|Hà Nội|15082021",  # CCCD: the birth date
    "{n}|Nguyễn Văn An|01/02/1988|CCCD|QID-7F3A9C21|",  # PC-Covid: the document number
    "001088012345|Nguyễn Văn An|{n}|CCCD|QID-7F3A9C21|",  # PC-Covid: the birth date
    "001088012345|Nguyễn Văn An|01/02/1988|CCCD|QID-7F3A9C21|{n}<0912345678",  # PC-Covid: insurance number
])
def test_unsigned_codes_give_one_reason_whatever_the_integers_size(template):
    answers = {}
    for digits in (20, 300, 4300, 5000, 100_000):
        check = VERIFIER.check(template.format(n="9" * digits), at=NOW)
        answers[digits] = (check.format, check.valid, check.reason)
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[2] == reasons.MALFORMED


def test_kiosk_verify_prints_no_traceback_for_huge_integers(tmp_path):
    DSC.save(tmp_path / "dsc.key.pem", tmp_path / "dsc.crt.pem")
    payloads = [_bignum_dcc(2000, "dn"), _bignum_dcc(2000, "exp"), "9" * 5000 + "|1|2|3|4|5|6"]
    result = subprocess.run([sys.executable, "-m", "kiosk", "verify", "--trust", str(tmp_path / "dsc.crt.pem"),
                             "--at", "2021-11-20T08:00:00Z", *payloads], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["reason"] for x in lines] == [reasons.MALFORMED] * 3


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "folder"])
def test_trust_files_that_are_not_regular_files_are_refused_at_once(tmp_path, target):
    if target == "fifo":
        path = tmp_path / "list.json"
        os.mkfifo(path)  # nobody writes: a blocking open would hang forever
    elif target == "folder":
        path = tmp_path / "empty"
        path.mkdir()
    else:
        path = target
    for args in (["verify", "--trust", str(path), "HC1:NCF"],
                 ["verify", "--bundle", str(path), "--authority-key", str(path), "HC1:NCF"]):
        result = subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert str(path) in result.stderr and len(result.stderr.strip().splitlines()) == 1
