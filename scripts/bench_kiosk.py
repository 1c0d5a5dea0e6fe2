"""What the kiosk benchmarks share: a whole kiosk's config (mock pins, no screen) and sample visitors."""

from __future__ import annotations

from pathlib import Path


def pc_covid(n: int) -> str:
    """Visitor ``n``'s PC-Covid code (a distinct citizen for every n)."""
    return f"{n:012d}|Nguyễn Văn Khách|01/02/1988|CCCD|QID-{n:08X}|0123456789<0912345678<1<<"


def write_config(work: Path, device: str, camera: str, mqtt: str = "enabled = false", extra: str = "") -> Path:
    """``work/kiosk.toml`` for kiosk bench/``device``: ``camera`` and ``mqtt`` are those sections' lines,
    ``extra`` whole sections more (``[trust]``, ...)."""
    path = work / "kiosk.toml"
    path.write_text(f"""
[device]
site = "bench"
id = "{device}"
state_dir = "{work / 'state'}"
[venue]
id = "V-BENCH"
name = "{device.capitalize()} bench"
qr_content = "https://example.vn/venue/V-BENCH"
[camera]
{camera}
{extra}
[signals]
pin_factory = "mock"
green_led = 17
red_led = 27
buzzer = 22
relay = 23
[screen]
enabled = false
[mqtt]
{mqtt}
""", encoding="utf-8")
    return path
