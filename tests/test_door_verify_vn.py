"""Vietnam's unsigned codes: PC-Covid personal QR and the CCCD chip ID card QR."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kiosk.wire import reasons
from kiosk.door.verify.base import VerifyContext
from kiosk.door.verify.cccd import Cccd
from kiosk.door.verify.pccovid import PcCovid
from kiosk.trust.store import TrustStore
from kiosk.door.verify.verifier import Verifier

NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)
CTX = VerifyContext(now=NOW, trust=TrustStore.empty())

CCCD = "001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền, Hoàn Kiếm, Hà Nội|15082021"
PC = "001088012345|NGUYEN VAN AN|1988-02-01|0|QID-7F3A9C21|GD4797912345678<0912345678<1<<"


def test_cccd_valid_unsigned_with_holder_and_identity():
    check = Cccd().check(CCCD, CTX)
    assert check.valid and check.reason == reasons.OK and check.signed is False
    assert check.identity == "vn-id:001088012345"
    assert check.holder.name == "Nguyễn Văn An" and check.holder.birth_date == "1988-02-01"
    assert check.facts["sex"] == "male" and check.facts["issued_on"] == "2021-08-15"
    assert "only the format" in check.detail


def test_pc_covid_valid_unsigned_same_identity_as_the_card():
    check = PcCovid().check(PC, CTX)
    assert check.valid and check.reason == reasons.OK and check.signed is False
    assert check.identity == Cccd().check(CCCD, CTX).identity
    assert check.holder.birth_date == "1988-02-01" and check.facts["sex"] == "male"
    assert check.facts["self_declared"] is True


def test_verifier_routes_each_format():
    v = Verifier(TrustStore.empty())
    assert v.check(CCCD, at=NOW).format == "cccd"
    assert v.check(PC, at=NOW).format == "pc-covid"
    assert v.check("hello|world", at=NOW).format == "unknown"


@pytest.mark.parametrize("payload,why", [
    ("001088012345|012345678|Nguyễn Văn An|01021988|Nữ|12 Tràng Tiền|15082021", "sex"),  # digit 4 = 0: male
    ("001098012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền|15082021", "birth year"),
    ("001288012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền|15082021", "birth year"),  # 2088
    ("099088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền|15082021", "province"),
    ("00108801234|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền|15082021", "12 digits"),
    ("001088012345|01234567|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền|15082021", "old ID"),
    ("001088012345|012345678|Nguyễn Văn 4n|01021988|Nam|12 Tràng Tiền|15082021", "name"),
    ("001088012345|012345678|Nguyễn Văn An|31021988|Nam|12 Tràng Tiền|15082021", "date of birth"),
    ("001088012345|012345678|Nguyễn Văn An|01021988|Male|12 Tràng Tiền|15082021", "sex"),
    ("001088012345|012345678|Nguyễn Văn An|01021988|Nam||15082021", "address"),
    ("001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền|15082031", "issue date"),  # future
    ("001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng\x00Tiền|15082021", "control"),
])
def test_cccd_strict_fields(payload, why):
    check = Cccd().check(payload, CTX)
    assert not check.valid and check.reason == reasons.MALFORMED
    assert why in check.detail


def test_cccd_female_born_2000s():
    check = Cccd().check("079305001234||Lê Thị Hoa|07072005|Nữ|Quận 1, TP. Hồ Chí Minh|01032022",
                         VerifyContext(now=datetime(2022, 5, 1, tzinfo=timezone.utc), trust=TrustStore.empty()))
    assert check.valid and check.facts["sex"] == "female" and check.facts["old_id"] is False


@pytest.mark.parametrize("payload,identity", [
    (PC, "vn-id:001088012345"),
    ("******012345|NGUYEN VAN AN|1988-**-**|0|QID-7F3A9C21|", "pc-covid:QID-7F3A9C21"),  # masked by the app
    ("012345678|TRAN THI B|1975-06-30|1|QID-00000001|<<2<<QID-PROXY-01", "vn-cmnd:012345678"),
    ("B1234567|JOHN SMITH|1980|0|QID-00000002|", "passport:B1234567"),
    # The lead's demo form: diacritics, dd/mm/yyyy and the document kind as LoaiDinhDanh.
    ("001088012345|Nguyễn Văn An|01/02/1988|CCCD|QID-7F3A9C21|0123456789<0912345678<1<<", "vn-id:001088012345"),
])
def test_pc_covid_variants(payload, identity):
    check = PcCovid().check(payload, CTX)
    assert check.valid, check.detail
    assert check.identity == identity


@pytest.mark.parametrize("payload,why", [
    ("00108801234X|NGUYEN VAN AN|1988-02-01|0|QID-7F3A9C21|", "document number"),
    ("001088012345|NGUYEN  VAN AN|1988-02-01|0|QID-7F3A9C21|", "name"),
    ("001088012345|NGUYEN VAN AN|1988-02-30|0|QID-7F3A9C21|", "date of birth"),
    ("001088012345|NGUYEN VAN AN|2099-02-01|0|QID-7F3A9C21|", "date of birth"),
    ("001088012345|NGUYEN VAN AN|1988-02-01|7|QID-7F3A9C21|", "identification type"),
    ("001088012345|NGUYEN VAN AN|1988-02-01|CMND|QID-7F3A9C21|", "does not fit"),
    ("001088012345|NGUYEN VAN AN|1988-02-01|0||", "QID"),
    ("001088012345|NGUYEN VAN AN|1988-02-01|0|QID-7F3A9C21|<<5", "sex"),
    ("001088012345|NGUYEN VAN AN|1988-02-01|0|QID-7F3A9C21|<12345<1", "phone"),
    ("001088012345|NGUYEN VAN AN|1988-02-01|0|QID-7F3A9C21|1<2<3<4<5<6", "more than 5"),
    ("001088012345|NGUYEN VAN AN|1977-02-01|0|QID-7F3A9C21|", "birth year"),  # ID says 1988
])
def test_pc_covid_strict_fields(payload, why):
    check = PcCovid().check(payload, CTX)
    assert not check.valid and check.reason == reasons.MALFORMED
    assert why in check.detail


def test_decomposed_unicode_is_the_same_person():
    import unicodedata

    nfd = unicodedata.normalize("NFD", CCCD)
    assert nfd != CCCD
    a, b = Cccd().check(CCCD, CTX), Cccd().check(nfd, CTX)
    assert b.valid and a.holder == b.holder and a.identity == b.identity
