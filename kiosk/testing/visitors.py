"""The demo's sample visitors, rendered as camera frames.

Codes are made at run time from the demo keys in ``config/demo-keys/`` so
their signatures and validity periods are always current; each sample says
what the kiosk must answer, so the demo doubles as an end-to-end check.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kiosk.wire import reasons

REPO = Path(__file__).resolve().parents[2]


def _config_dir() -> Path:
    """config/ of a source checkout, else the copy an installed kiosk keeps in <prefix>/share/kiosk."""
    for folder in (REPO / "config", Path(sys.prefix) / "share" / "kiosk" / "config"):
        if (folder / "demo.toml").is_file():
            return folder
    return REPO / "config"


DEMO_CONFIG = _config_dir() / "demo.toml"
DEMO_KEYS = _config_dir() / "demo-keys"


@dataclass(frozen=True)
class Sample:
    """One visitor in the demo: what they show and what the kiosk must answer."""

    label: str
    payload: str
    verdict: str  # "accept" | "reject"
    reason: str


def _declaration_samples(now: datetime) -> list[Sample]:
    from kiosk.issuing.declaration import IssuerKey, issue

    key = IssuerKey.load(DEMO_KEYS / "declaration-issuer.key.pem")
    stranger = IssuerKey.generate("Ed25519")  # a key no trust list holds

    def decl(k, status="green", valid_hours=24.0, declared_hours_ago=1.0, subject="demo-subject-1", ident="D-0001"):
        declared = now - timedelta(hours=declared_hours_ago)
        return issue(k, status=status, declared_at=declared, valid_until=declared + timedelta(hours=valid_hours),
                     declaration_id=ident, subject_id=subject)

    return [
        Sample("signed health declaration, green", decl(key), "accept", reasons.OK),
        Sample("health declaration, expired yesterday", decl(key, valid_hours=24, declared_hours_ago=48,
                                                             subject="demo-subject-2", ident="D-0002"),
               "reject", reasons.EXPIRED),
        Sample("health declaration signed by an unknown issuer", decl(stranger, subject="demo-subject-3", ident="D-0003"),
               "reject", reasons.UNKNOWN_KEY),
        Sample("health declaration, status red", decl(key, status="red", subject="demo-subject-4", ident="D-0004"),
               "reject", reasons.policy("status")),
    ]


def _dcc_samples(now: datetime) -> list[Sample]:
    from kiosk.issuing.dcc import issue_dcc

    payload = issue_dcc(DEMO_KEYS / "dcc-signer.key.pem", DEMO_KEYS / "dcc-signer.crt.pem", kind="vaccination",
                        family="Trần", given="Thị Bình", dob="1988-03-14", at=now, last_dose=now - timedelta(days=60))
    return [Sample("EU DCC vaccination certificate (vaccine passport)", payload, "accept", reasons.OK)]


def samples(now: datetime | None = None) -> list[Sample]:
    """The demo's visitors, in order: accepted, rejected for different reasons, and a duplicate."""
    now = now or datetime.now(timezone.utc)
    # PC-Covid and the CCCD chip card of the same citizen: one person, two QR strings.
    pc_covid = "001088012345|Nguyễn Văn An|01/02/1988|CCCD|QID-7F3A9C21|0123456789<0912345678<1<<"
    cccd = "001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền, Hoàn Kiếm, Hà Nội|15082021"
    out = _declaration_samples(now)[:1]
    dcc = _dcc_samples(now)
    dcc_payload = dcc[0].payload
    out += dcc
    out += [
        Sample("PC-Covid personal QR (unsigned: format checked only)", pc_covid, "accept", reasons.OK),
        Sample("CCCD chip ID card of the same person: a duplicate", cccd, "accept", reasons.DUPLICATE),
    ]
    out += _declaration_samples(now)[1:]
    out += [
        # A real certificate cut short, as a torn or half-visible code would read.
        Sample("EU DCC with a corrupted payload", dcc_payload[: len(dcc_payload) * 2 // 3], "reject", reasons.MALFORMED),
        Sample("a web link, not a health code", "https://example.com/menu", "reject", reasons.UNKNOWN_FORMAT),
    ]
    return out


def render_frame(payload: str, size: tuple[int, int] = (640, 480), seed: int = 0):
    """A camera-like grey frame of a phone showing ``payload`` as a QR code."""
    import numpy as np
    import segno

    rng = random.Random(seed)
    w, h = size
    qr = segno.make(payload, error="m", micro=False)
    modules = np.array(list(qr.matrix_iter(scale=1, border=4)), dtype=np.uint8)
    scale = max(2, int(min(w, h) * 0.7) // modules.shape[0])
    code = np.kron(modules, np.ones((scale, scale), dtype=np.uint8))
    code = np.where(code > 0, 25, 235).astype(np.uint8)  # a phone screen is never pure black or white
    frame = np.full((h, w), 70 + rng.randrange(30), dtype=np.uint8)
    ch, cw = code.shape
    y = (h - ch) // 2 + rng.randrange(-10, 11)
    x = (w - cw) // 2 + rng.randrange(-20, 21)
    y, x = max(0, min(h - ch, y)), max(0, min(w - cw, x))
    frame[y:y + ch, x:x + cw] = code
    noise = np.frombuffer(rng.randbytes(w * h), dtype=np.uint8).reshape(h, w) % 9
    return (frame.astype(np.int16) + noise - 4).clip(0, 255).astype(np.uint8)


def blank_frame(size: tuple[int, int] = (640, 480), seed: int = 0):
    """A frame with nobody in front of the camera."""
    import numpy as np

    w, h = size
    return np.full((h, w), 80 + seed % 20, dtype=np.uint8)


def replay_frames(items: list[Sample], frames_per_code: int = 3, gap_frames: int = 2, size=(640, 480)) -> list:
    """Frames for a replay: each code held up for a few frames, then nobody (so each is one scan)."""
    frames = []
    for i, s in enumerate(items):
        frames += [render_frame(s.payload, size, seed=i * 10 + k) for k in range(frames_per_code)]
        frames += [blank_frame(size, seed=i)] * gap_frames
    return frames
