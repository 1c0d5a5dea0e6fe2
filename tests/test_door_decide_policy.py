"""The venue policy on top of technically valid codes: each rule, revocation, and the permissive default."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.issuing import dcc as issuing
from kiosk import config
from kiosk.wire import reasons
from kiosk.door.show import reason_text
from kiosk.door.verify import dcc
from kiosk.door.verify.base import CodeCheck
from kiosk.issuing.declaration import IssuerKey, issue
from kiosk.door.decide.policy import Policy
from kiosk.trust.revoked import RevocationFileError, load_revoked
from kiosk.trust.store import TrustStore
from kiosk.door.verify.verifier import Verifier

NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)


def _key(*args, **kw):
    """An issuer key valid since 2020: the tests' clock is in 2021."""
    kw.setdefault("not_before", datetime(2020, 1, 1, tzinfo=timezone.utc))
    return IssuerKey.generate(*args, **kw)

DSC = _key("ES256", dcc_types=("vaccination", "test", "recovery"))
HD = _key("Ed25519")
VERIFIER = Verifier(TrustStore.from_certificates([DSC.certificate, HD.certificate]))
CCCD = "001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền, Hoàn Kiếm, Hà Nội|15082021"


def venue(**kw) -> Policy:
    """The policy of a config with these [policy] keys (the rest at their config defaults)."""
    text = '[device]\nsite="s"\nid="d"\n[venue]\nid="v"\nname="n"\nqr_content="q"\n[policy]\n'
    for k, v in kw.items():
        text += f"{k} = {_toml(v)}\n"
    cfg = config.parse(text)
    return Policy.from_config(cfg.policy, resolve=cfg.resolve)


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(f'"{x}"' for x in v) + "]"
    return f'"{v}"' if isinstance(v, str) else str(v)


def vacc(days_ago: int, dn=2, sd=2):
    return VERIFIER.check(issuing.issue_dcc(DSC, kind="vaccination", family="A", given="B", dob="1990-01-01", at=NOW,
                                        last_dose=NOW - timedelta(days=days_ago), dn=dn, sd=sd), at=NOW)


def test(hours_ago: float, negative=True):
    return VERIFIER.check(issuing.issue_dcc(DSC, kind="test", family="A", given="B", dob="1990-01-01", at=NOW,
                                        sample_time=NOW - timedelta(hours=hours_ago), negative=negative), at=NOW)


test.__test__ = False


def recovery(days_ago: int):
    return VERIFIER.check(issuing.issue_dcc(DSC, kind="recovery", family="A", given="B", dob="1990-01-01", at=NOW,
                                        first_positive=NOW - timedelta(days=days_ago)), at=NOW)


def decl(status):
    return VERIFIER.check(issue(HD, status=status, declared_at=NOW - timedelta(hours=1),
                                valid_until=NOW + timedelta(hours=1), declaration_id="D-1", subject_id="s"), at=NOW)


def test_default_policy_accepts_every_valid_code_and_nothing_else():
    p = Policy()
    for check in (vacc(1, dn=1), test(200, negative=False), recovery(20), decl("red"), VERIFIER.check(CCCD, at=NOW)):
        assert check.valid, check.detail
        assert p.decide(check, NOW) == ("accept", reasons.OK)
    bad = VERIFIER.check("HC1:garbage", at=NOW)
    assert p.decide(bad, NOW) == ("reject", bad.reason)


def test_formats_and_unsigned():
    card = VERIFIER.check(CCCD, at=NOW)
    assert venue(accept_formats=["eu-dcc"]).decide(card, NOW) == ("reject", reasons.policy("format"))
    assert venue(accept_unsigned=False).decide(card, NOW) == ("reject", reasons.UNSIGNED)
    assert venue(accept_unsigned=True).decide(card, NOW) == ("accept", reasons.OK)
    # Signed codes are not affected by accept_unsigned.
    assert venue(accept_unsigned=False).decide(decl("green"), NOW) == ("accept", reasons.OK)


def test_declaration_statuses():
    p = venue(accept_statuses=["green", "yellow"])
    assert p.decide(decl("yellow"), NOW)[0] == "accept"
    assert p.decide(decl("red"), NOW) == ("reject", reasons.policy("status"))


@pytest.mark.parametrize("check,rules,expected", [
    (lambda: vacc(30), {}, reasons.OK),
    (lambda: vacc(30, dn=1, sd=2), {}, reasons.policy("vaccination-incomplete")),
    (lambda: vacc(30, dn=1, sd=2), {"vaccination_complete": False}, reasons.OK),
    (lambda: vacc(5), {}, reasons.policy("vaccination-too-recent")),
    (lambda: vacc(5), {"vaccination_min_days": 0}, reasons.OK),
    (lambda: vacc(400), {"vaccination_max_days": 270}, reasons.policy("vaccination-too-old")),
    (lambda: test(10), {}, reasons.OK),
    (lambda: test(80), {}, reasons.policy("test-too-old")),
    (lambda: test(80), {"test_max_hours": 96}, reasons.OK),
    (lambda: test(10, negative=False), {}, reasons.policy("test-positive")),
    (lambda: test(-2), {}, reasons.policy("test-in-future")),
    (lambda: recovery(30), {}, reasons.OK),
    (lambda: recovery(5), {}, reasons.policy("recovery-window")),  # df = first positive + 11 days
    (lambda: recovery(30), {"recovery_max_days": 20}, reasons.policy("recovery-window")),
    (lambda: test(10), {"dcc_types": ["vaccination"]}, reasons.policy("certificate-type")),
])
def test_dcc_rules(check, rules, expected):
    c = check()
    assert c.valid, c.detail
    assert venue(**rules).decide(c, NOW)[1] == expected


def test_revocation_by_uvci_declaration_id_and_signer(tmp_path):
    v = vacc(30)
    uvci_hash = v.facts["revocation_keys"][0]
    d = decl("green")
    lines = ["# revoked at the venue", uvci_hash.upper(), "", hashlib.sha256(b"D-1").hexdigest() + "  # declaration"]
    (tmp_path / "revoked.txt").write_text("\n".join(lines) + "\n")
    p = venue(revoked_file=str(tmp_path / "revoked.txt"))
    assert p.decide(v, NOW) == ("reject", reasons.REVOKED)
    assert p.decide(d, NOW) == ("reject", reasons.REVOKED)
    assert p.decide(test(10), NOW) == ("accept", reasons.OK)  # another UVCI, same person
    # Revoking the document signer's certificate revokes everything it signed.
    (tmp_path / "revoked.txt").write_text(v.facts["revocation_keys"][1] + "\n")
    assert venue(revoked_file=str(tmp_path / "revoked.txt")).decide(test(10), NOW) == ("reject", reasons.REVOKED)


def test_revocation_file_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("deadbeef\n")
    with pytest.raises(RevocationFileError, match=r"bad.txt:1"):
        load_revoked(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="missing.txt"):
        load_revoked(tmp_path / "missing.txt")


def test_invalid_checks_keep_their_reason():
    check = CodeCheck.reject("eu-dcc", reasons.EXPIRED, "expired")
    assert venue().decide(check, NOW) == ("reject", reasons.EXPIRED)


def test_every_policy_reason_has_words():
    for rule in ("format", "status", "vaccination-incomplete", "vaccination-too-recent", "vaccination-too-old",
                 "test-positive", "test-too-old", "test-in-future", "recovery-window", "certificate-type"):
        assert reason_text.words(reasons.policy(rule), "en") != "Not allowed by venue policy", rule


def test_a_bundle_may_set_every_venue_rule_and_only_those():
    """The trust bundle's policy rules (kiosk.trust.bundle) are the Policy's fields, each of the same kind."""
    import dataclasses

    from kiosk.trust.bundle import POLICY_RULES, policy_problem

    fields = {f.name: f for f in dataclasses.fields(Policy) if f.name not in ("revoked", "trust")}
    assert set(POLICY_RULES) == set(fields)
    for name, f in fields.items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = POLICY_RULES[name]
        assert isinstance(default, bool) == (kind is bool), name
        assert (isinstance(default, (int, float)) and not isinstance(default, bool)) == (kind in (int, float)), name
        example = True if kind is bool else 1 if kind in (int, float) else ["x"]
        assert policy_problem({name: example}) is None
    assert policy_problem({"revoked": []}) == "unknown rule 'revoked'"
