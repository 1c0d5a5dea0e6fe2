"""Seeded camera frames of a QR code shown on a phone screen, for benchmarks and tests.

What a kiosk camera sees when a visitor holds up a phone: a QR code (made
with segno) in an app screen with a bezel, tilted in perspective and rotated
in the hand, the screen's pixel grid beating against the camera's (moiré),
a glare spot, focus or motion blur, low light with sensor noise, over a
cluttered background. Every frame is grey (what the decoder reads) and
reproducible from its seed. Frames without a code use the same scenes with
an app screen that shows no code: the common case at an idle kiosk.

Needs numpy and OpenCV (development machines); the kiosk never imports it.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field

import cv2
import numpy as np
import segno

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@dataclass
class ScreenFrame:
    """One synthetic camera frame: the grey image, the text of the code in it ('' = none) and how it was made."""

    image: np.ndarray
    text: str
    params: dict = field(default_factory=dict)


def sample_payload(rng: random.Random) -> str:
    """A payload shaped like what visitors show: an EU DCC (HC1), a PC-Covid/health QR, a CCCD, a URL."""
    kind = rng.choice(("hc1", "pccovid", "cccd", "url"))
    if kind == "hc1":
        return "HC1:" + "".join(rng.choice(BASE45) for _ in range(rng.randint(250, 520)))
    if kind == "pccovid":
        name = " ".join(rng.choice(("Nguyễn", "Trần", "Lê", "Phạm", "Văn", "Thị", "Minh", "Anh", "Hoa", "Dũng"))
                        for _ in range(3))
        return "|".join(["PCCOVID", f"{rng.randint(10**9, 10**10 - 1)}", name, f"{rng.randint(1950, 2010)}",
                         rng.choice(("green", "yellow", "red")), f"{rng.getrandbits(128):032x}"])
    if kind == "cccd":
        return "|".join([f"{rng.randint(0, 10**12 - 1):012d}", f"{rng.randint(10**8, 10**9 - 1)}",
                         "Nguyễn Văn An", f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(1950, 2005)}",
                         rng.choice(("Nam", "Nữ")), "Số 1, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh", "01012021"])
    path = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(10, 60)))
    return f"https://tokhaiyte.vn/c/{path}"


def _qr_modules(text: str, rng: random.Random) -> np.ndarray:
    qr = segno.make(text, error=rng.choice("lmq"), micro=False)
    m = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
    return np.pad(m, 4)  # quiet zone, as phone apps draw it


def _phone_screen(text: str, rng: random.Random, px_per_module: int) -> tuple[np.ndarray, float]:
    """The phone's screen as emitted light (0..1) in screen pixels (app header, QR, text lines), and its pixel-grid depth."""
    modules = _qr_modules(text, rng) if text else None
    n = modules.shape[0] if modules is not None else 45
    qr_px = n * px_per_module
    w = int(qr_px * rng.uniform(1.1, 1.3))
    h = int(w * rng.uniform(1.8, 2.1))
    white = rng.uniform(0.85, 1.0)
    screen = np.full((h, w), white, np.float32)
    header = int(h * rng.uniform(0.08, 0.14))
    screen[:header] = rng.uniform(0.2, 0.6)  # coloured app bar, seen in grey
    top = int(h * rng.uniform(0.25, 0.35))
    left = (w - qr_px) // 2
    if modules is not None:
        qr = np.kron(modules, np.ones((px_per_module, px_per_module), np.uint8))
        screen[top:top + qr_px, left:left + qr_px] = np.where(qr == 1, rng.uniform(0.0, 0.1), white)
    else:
        # an app screen without a code: a picture block where the code would be
        block = np.asarray(np.random.default_rng(rng.getrandbits(32)).random((8, 8)), np.float32)
        screen[top:top + qr_px, left:left + qr_px] = cv2.resize(block, (qr_px, qr_px), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    y = top + qr_px + px_per_module * 3
    while y + 8 < h:  # lines of "text": short dark bars
        x0 = int(w * 0.1)
        x1 = int(w * rng.uniform(0.4, 0.9))
        screen[y:y + 6, x0:x1] = rng.uniform(0.2, 0.4)
        y += rng.randint(14, 24)
    if rng.random() < 0.1:  # dark mode: a light code on a dark screen
        screen = 1.0 - screen
    # Pixel grid: dark gaps between screen pixels (the source of moiré once resampled).
    grid = rng.uniform(0.0, 0.35)
    if grid:
        pitch = 3
        mask = np.ones((h, w), np.float32)
        mask[::pitch, :] -= grid
        mask[:, ::pitch] -= grid
        screen *= mask
    return screen, grid


def _background(h: int, w: int, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
    bg = 0.35 + 0.2 * (a * xx / w + b * yy / h)
    for _ in range(rng.randint(3, 9)):  # clutter: doors, posters, people
        x0, y0 = rng.randrange(w), rng.randrange(h)
        cv2.rectangle(bg, (x0, y0), (x0 + rng.randint(20, w // 2), y0 + rng.randint(20, h // 2)), rng.uniform(0.05, 0.9), -1)
    for _ in range(rng.randint(0, 4)):
        cv2.circle(bg, (rng.randrange(w), rng.randrange(h)), rng.randint(10, h // 3), rng.uniform(0.1, 0.8), -1)
    bg += nrng.normal(0, 0.02, (h, w)).astype(np.float32)
    return bg


def render(text: str, size: tuple[int, int], seed: int) -> ScreenFrame:
    """One frame of ``size`` (width, height) showing ``text`` on a phone (``''``: a phone without a code)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    w, h = size
    frame = _background(h, w, rng, nrng)
    ppm = rng.randint(4, 8)
    screen, grid = _phone_screen(text, rng, ppm)
    bezel = int(screen.shape[1] * 0.06)
    phone = np.pad(screen, bezel, constant_values=rng.uniform(0.02, 0.12))
    ph, pw = phone.shape
    # Scale so the code spans 30..75 % of the frame height: a phone held 15..40 cm from a kiosk camera.
    qr_px = (screen.shape[1] / 1.2)
    scale = rng.uniform(0.30, 0.75) * h / qr_px
    rot = math.radians(rng.uniform(-25, 25))
    tilt = rng.uniform(0.0, 0.18)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    # Centre the code (a third of the way down the phone screen) near the middle of the frame.
    cx = w / 2 + rng.uniform(-0.2, 0.2) * w
    cy = h / 2 + rng.uniform(-0.15, 0.15) * h
    anchor = np.float32([pw / 2, bezel + screen.shape[0] * 0.3 + qr_px / 2 * 1.0])
    pts = (src - anchor) * scale
    # Perspective: one edge of the phone further from the camera than the other.
    axis = rng.choice((0, 1))
    sign = rng.choice((-1, 1))
    span = pts[:, axis].max() - pts[:, axis].min()
    for i, p in enumerate(pts):
        far = (p[axis] - pts[:, axis].min()) / span if sign > 0 else (pts[:, axis].max() - p[axis]) / span
        pts[i, 1 - axis] *= 1 - tilt * far
    c, s = math.cos(rot), math.sin(rot)
    dst = np.float32([[cx + x * c - y * s, cy + x * s + y * c] for x, y in pts])
    m = cv2.getPerspectiveTransform(src, dst)
    # INTER_LINEAR point-samples the screen's pixel grid: the camera's aliasing, hence the moiré.
    warped = cv2.warpPerspective(phone, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=-1.0)
    inside = warped >= 0
    frame[inside] = warped[inside]
    # Glare: a saturating highlight somewhere on the phone (a ceiling light in the glass).
    glare = rng.uniform(0.0, 1.0) if rng.random() < 0.6 else 0.0
    if glare:
        gx, gy = dst[:, 0].mean() + rng.uniform(-0.3, 0.3) * span * scale, dst[:, 1].mean() + rng.uniform(-0.3, 0.3) * span * scale
        sx, sy = rng.uniform(0.03, 0.12) * w, rng.uniform(0.03, 0.12) * h
        yy, xx = np.ogrid[0:h, 0:w]
        frame += glare * np.exp(-(((xx - gx) / sx) ** 2 + ((yy - gy) / sy) ** 2) / 2).astype(np.float32)
    # Blur: out of focus, or the hand moving.
    blur = rng.choice(("none", "focus", "motion"))
    amount = 0.0
    if blur == "focus":
        amount = rng.uniform(0.5, 1.6) * w / 640
        frame = cv2.GaussianBlur(frame, (0, 0), amount)
    elif blur == "motion":
        amount = rng.randint(3, int(7 * w / 640))
        k = np.zeros((amount, amount), np.float32)
        k[amount // 2, :] = 1.0 / amount
        k = cv2.warpAffine(k, cv2.getRotationMatrix2D((amount / 2 - 0.5, amount / 2 - 0.5), rng.uniform(0, 180), 1.0), (amount, amount))
        frame = cv2.filter2D(frame, -1, k / max(k.sum(), 1e-6))
    # Exposure: a dim entrance lifts gain, and noise with it.
    light = rng.uniform(0.25, 1.0)
    noise = 0.01 + 0.04 * (1 - light)
    frame = frame * light + nrng.normal(0, noise, (h, w)).astype(np.float32)
    image = np.clip(frame * 255.0, 0, 255).astype(np.uint8)
    params = {"seed": seed, "size": f"{w}x{h}", "module_px": round(scale * ppm, 2), "rotation": round(math.degrees(rot), 1),
              "tilt": round(tilt, 2), "grid": round(grid, 2), "glare": round(glare, 2),
              "blur": blur, "blur_amount": round(float(amount), 2), "light": round(light, 2)}
    return ScreenFrame(image, text, params)


def screen_frames(count: int, size: tuple[int, int] = (640, 480), seed: int = 2021, with_code: bool = True) -> list[ScreenFrame]:
    """``count`` reproducible frames of ``size``; ``with_code=False`` gives scenes without any code."""
    rng = random.Random(f"{seed}:{size}:{with_code}")
    out = []
    for _ in range(count):
        frame_seed = rng.getrandbits(32)
        text = sample_payload(random.Random(frame_seed)) if with_code else ""
        out.append(render(text, size, frame_seed))
    return out
