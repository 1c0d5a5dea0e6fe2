"""Signature checks in other processes, for an ingest worker whose own process is bound by the GIL.

The worker's process runs paho's network loop and the ingest's parsing in Python, under one
GIL; the checks (canonical JSON + Ed25519) can run elsewhere. :class:`VerifierPool` checks
chunks of messages in ``processes`` fresh interpreters, each holding the fleet's public
keys, with exactly :func:`kiosk.wire.signing.verify` (every reason the same). Results are
``(True, owner)`` or ``(False, reason)``; the ingest decides what they mean (wrong kiosk,
revoked key) as it does for its own checks.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.errors import SignatureRefused
from kiosk.wire.signing import KeyRing, TrustedKey, verify

CHUNK = 256  # messages per task: the inter-process cost is per task, a check is ~80 us

_KEYS: KeyRing | None = None


def _load(keys: list[tuple[str, str, bytes]]) -> None:
    global _KEYS
    _KEYS = KeyRing(TrustedKey(kid, owner, Ed25519PublicKey.from_public_bytes(raw)) for kid, owner, raw in keys)


def _check(items: list[tuple[str, bytes]]) -> list[tuple[bool, str]]:
    out = []
    for topic, payload in items:
        try:
            out.append((True, verify(payload, topic, _KEYS).signer.owner))
        except SignatureRefused as exc:
            out.append((False, exc.reason))
    return out


class VerifierPool:
    """``processes`` verifiers of one key ring; :meth:`check` keeps the order of its input."""

    def __init__(self, keys: KeyRing, processes: int):
        raw = [(k.kid, k.owner, k.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
               for k in keys]
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_load, initargs=(raw,))

    def check(self, items: list[tuple[str, bytes]]) -> list[tuple[bool, str]]:
        chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
        return [r for rs in self._pool.map(_check, chunks) for r in rs]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
