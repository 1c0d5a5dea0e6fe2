"""The venue's policy: a technically valid code is accepted only if the venue's rules allow it.

``Policy.from_config(PolicyConfig)`` builds it from ``[policy]``; ``Policy()``
(no config) accepts every technically valid code. ``decide(check, now)``
returns ``("accept"|"reject", reason)``; the reasons are the stable codes of
:mod:`kiosk.wire.reasons` (``policy:<rule>`` for a venue rule). Duplicates are not
decided here but in :mod:`kiosk.door.decide.checkin`.

Revocation is offline: a text file of SHA-256 hex identifiers, one per line
(``#`` comments allowed), matched against each code's ``revocation_keys``
fact: for a DCC the SHA-256 of its UVCI (``ci``) and of its signer's DER
certificate; for a health declaration the SHA-256 of its declaration id and of
its issuer's certificate. The trust bundle's own revocation list (by EU DCC
hash type) is applied earlier, by the verifier.

A trust bundle may carry venue-policy rules (its ``policy`` object, the same
keys as ``[policy]``): given ``trust=`` (the kiosk's trust keeper), the rules
of the current bundle override the config's for as long as that bundle is
current. Products and manufacturers outside the value sets are not refused
by the verifier (value sets are facts); ``dcc_products`` and
``dcc_manufacturers`` restrict them explicitly.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from kiosk.wire import reasons
from kiosk.trust.revoked import load_revoked
from kiosk.wire.formats import FORMAT_NAMES
from kiosk.config import PolicyConfig
from kiosk.door.verify.base import CodeCheck
from kiosk.trust.bundle import TrustKeeper

ACCEPT, REJECT = "accept", "reject"
TEST_NEGATIVE = "260415000"  # SNOMED CT "Not detected", the DCC value set's negative result
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass
class Policy:
    """Venue rules. The defaults accept every technically valid code."""

    accept_formats: tuple[str, ...] = tuple(f for f in FORMAT_NAMES if f != "unknown")
    accept_unsigned: bool = True
    accept_statuses: tuple[str, ...] = ("green", "yellow", "red")
    dcc_types: tuple[str, ...] = ("vaccination", "test", "recovery")
    vaccination_complete: bool = False
    vaccination_min_days: int = 0
    vaccination_max_days: int = 0  # 0 = never too old
    test_max_hours: int = 0  # 0 = any age
    test_negative_only: bool = False
    recovery_max_days: int = 0  # 0 = only the certificate's own df..du window
    clock_skew_seconds: float = 300.0
    dcc_products: tuple[str, ...] = ()  # accepted vaccination mp codes; empty = any
    dcc_manufacturers: tuple[str, ...] = ()  # accepted vaccination/test ma codes; empty = any
    revoked: frozenset[str] = field(default_factory=frozenset)
    trust: TrustKeeper | None = field(default=None, repr=False, compare=False)  # its bundle may carry rules

    @classmethod
    def from_config(cls, cfg: PolicyConfig, resolve: Callable[[str], Path] | None = None,
                    trust: TrustKeeper | None = None) -> "Policy":
        """The policy of a ``[policy]`` section; ``resolve`` turns a config-relative path into a real one
        (pass ``Config.resolve``); ``trust`` (optional) is the trust keeper whose current bundle's rules
        override these. :class:`kiosk.trust.revoked.RevocationFileError` (a ValueError) names a bad revocation file."""
        revoked: frozenset[str] = frozenset()
        if cfg.revoked_file:
            revoked = load_revoked(resolve(cfg.revoked_file) if resolve else cfg.revoked_file)
        return cls(accept_formats=tuple(cfg.accept_formats), accept_unsigned=cfg.accept_unsigned,
                   accept_statuses=tuple(cfg.accept_statuses), dcc_types=tuple(cfg.dcc_types),
                   vaccination_complete=cfg.vaccination_complete, vaccination_min_days=cfg.vaccination_min_days,
                   vaccination_max_days=cfg.vaccination_max_days, test_max_hours=cfg.test_max_hours,
                   test_negative_only=cfg.test_negative_only, recovery_max_days=cfg.recovery_max_days,
                   clock_skew_seconds=cfg.clock_skew_seconds,
                   dcc_products=tuple(cfg.dcc_products),
                   dcc_manufacturers=tuple(cfg.dcc_manufacturers),
                   revoked=revoked, trust=trust)

    def effective(self) -> "Policy":
        """This policy with the current trust bundle's rules applied (itself when there are none)."""
        if self.trust is None:
            return self
        store = self.trust.current()
        rules = store.policy
        if not rules:
            return self
        cached = self.__dict__.get("_effective")
        if cached is not None and cached[0] is store:
            return cached[1]
        merged = dataclasses.replace(self, trust=None, **{k: tuple(v) if isinstance(v, list) else v
                                                           for k, v in rules.items()})
        self.__dict__["_effective"] = (store, merged)
        return merged

    def decide(self, check: CodeCheck, now: datetime) -> tuple[str, str]:
        """``(verdict, reason)`` for a check at time ``now`` (aware)."""
        if self.trust is not None:
            policy = self.effective()
            if policy is not self:
                return policy.decide(check, now)
        if not check.valid:
            return REJECT, check.reason
        if check.format not in self.accept_formats:
            return REJECT, reasons.policy("format")
        if self.revoked and self._revoked(check.facts.get("revocation_keys", ())):
            return REJECT, reasons.REVOKED
        if not check.signed and not self.accept_unsigned:
            return REJECT, reasons.UNSIGNED
        if check.format == "health-declaration" and check.facts.get("status") not in self.accept_statuses:
            return REJECT, reasons.policy("status")
        if check.format == "eu-dcc":
            rule = self._dcc_rule(check.facts, now)
            if rule:
                return REJECT, reasons.policy(rule)
        return ACCEPT, reasons.OK

    def _revoked(self, keys: Iterable[str]) -> bool:
        return any(k in self.revoked for k in keys)

    def _dcc_rule(self, f, now: datetime) -> str | None:
        """The name of the first DCC rule the certificate breaks, or None."""
        kind = f.get("type")
        if kind not in self.dcc_types:
            return "certificate-type"
        skew = timedelta(seconds=self.clock_skew_seconds)
        today = now.date()
        if self.dcc_manufacturers and kind in ("vaccination", "test") and f.get("ma") not in self.dcc_manufacturers:
            return "manufacturer"
        if kind == "vaccination":
            if self.dcc_products and f.get("mp") not in self.dcc_products:
                return "product"
            dn, sd = f.get("dn"), f.get("sd")
            if self.vaccination_complete and not (isinstance(dn, int) and isinstance(sd, int) and dn >= sd):
                return "vaccination-incomplete"
            dt = _date(f.get("dt"))
            if dt is None:
                return "vaccination-incomplete"
            days = (today - dt).days
            if days < self.vaccination_min_days:
                return "vaccination-too-recent"
            if self.vaccination_max_days and days > self.vaccination_max_days:
                return "vaccination-too-old"
        elif kind == "test":
            if self.test_negative_only and f.get("tr") != TEST_NEGATIVE:
                return "test-positive"
            sc = _datetime(f.get("sc"))
            if sc is None or sc > now + skew:
                # A sample taken in the future is not a test result (EU check DGC8).
                return "test-in-future"
            if self.test_max_hours and now - sc > timedelta(hours=self.test_max_hours):
                return "test-too-old"
        elif kind == "recovery":
            df, du, fr = _date(f.get("df")), _date(f.get("du")), _date(f.get("fr"))
            if df is None or du is None or not df <= today <= du:
                return "recovery-window"
            if self.recovery_max_days and (fr is None or (today - fr).days > self.recovery_max_days):
                return "recovery-window"
        return None
