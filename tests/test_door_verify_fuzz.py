"""Hostile input: every decoder answers with a stable reason, in bounded time, never an exception.

The plug-ins are called directly (not through the Verifier's exception guard),
so a plug-in that lets an exception escape fails here even though the kiosk
would survive it.
"""

from __future__ import annotations

import os
import time
import zlib
from datetime import datetime, timezone

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.wire import reasons
from kiosk.door.verify import base45, cose, load_all
from kiosk.door.verify.base import VerifyContext
from kiosk.issuing.keys import IssuerKey
from kiosk.trust.store import TrustStore
from kiosk.door.verify.verifier import Verifier

NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)


def _key(*args, **kw):
    """An issuer key valid since 2020: the tests' clock is in 2021."""
    kw.setdefault("not_before", datetime(2020, 1, 1, tzinfo=timezone.utc))
    return IssuerKey.generate(*args, **kw)

KEY = _key("ES256", dcc_types=("vaccination",))
CTX = VerifyContext(now=NOW, trust=TrustStore.from_certificates([KEY.certificate]))
PLUGINS = load_all()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _all_plugins_answer(payload: str) -> None:
    for plugin in PLUGINS:
        if plugin.detects(payload):
            started = time.perf_counter()
            check = plugin.check(payload, CTX)
            assert time.perf_counter() - started < 1.0
            assert check.format == plugin.name
            assert reasons.is_known(check.reason)
            assert check.valid == (check.reason == reasons.OK)


def _b45(data: bytes) -> str:
    return base45.encode(data)


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.integers(-300, 10) | st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(st.text(max_size=5000))
def test_any_text(text):
    _all_plugins_answer(text)
    check = Verifier(CTX.trust).check(text, at=NOW)
    assert reasons.is_known(check.reason)


@FUZZ
@given(st.sampled_from(["HC1:", "HD1:"]), st.text(alphabet=base45.ALPHABET, max_size=3000))
def test_base45_text_after_a_prefix(prefix, body):
    _all_plugins_answer(prefix + body)


@FUZZ
@given(st.sampled_from(["HC1:", "HD1:"]), st.binary(max_size=2000), st.booleans())
def test_random_bytes_compressed_or_not(prefix, data, compress):
    _all_plugins_answer(prefix + _b45(zlib.compress(data) if compress else data))


@FUZZ
@given(st.sampled_from(["HC1:", "HD1:"]), cbor_values, st.booleans())
def test_random_cbor_inside_cose(prefix, value, as_payload):
    try:
        body = cbor2.dumps(value)
    except (TypeError, ValueError, OverflowError):
        return
    structure = cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: KEY.kid}), {}, body, b"\x00" * 64]) if as_payload else value
    raw = cbor2.dumps(structure)
    _all_plugins_answer(prefix + _b45(zlib.compress(raw) if prefix == "HC1:" else raw))


@FUZZ
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="|"), max_size=30), min_size=6, max_size=7))
def test_pipe_separated_fields(fields):
    _all_plugins_answer("|".join(fields))


@FUZZ
@given(st.binary(max_size=500))
def test_base45_round_trip(data):
    assert base45.decode(base45.encode(data)) == data


@FUZZ
@given(st.binary(max_size=300))
def test_cbor_guard_never_lets_cbor2_crash(data):
    try:
        cose.loads(data)
    except cose.CoseError as exc:
        assert exc.reason == reasons.MALFORMED


@FUZZ
@given(cbor_values)
def test_cbor_guard_accepts_what_cbor2_writes(value):
    try:
        data = cbor2.dumps(value)
    except (TypeError, ValueError, OverflowError):
        return
    cose.check_cbor(data, max_depth=64)


def test_seven_kilobyte_qr_text_and_random_bytes_are_quick():
    v = Verifier(CTX.trust)
    for payload in ("HC1:" + "A" * 7000, "HD1:" + "0" * 7000, os.urandom(7000).decode("latin-1"), "|" * 7000):
        started = time.perf_counter()
        check = v.check(payload, at=NOW)
        assert time.perf_counter() - started < 0.5
        assert check.reason == reasons.MALFORMED if len(payload) > 4296 else reasons.is_known(check.reason)
