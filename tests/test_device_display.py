"""Display driver choice and the windowed screen loop (SDL dummy driver: no monitor needed)."""

from __future__ import annotations

import logging

import pytest

pygame = pytest.importorskip("pygame")

from device.display import choose_drivers, open_display  # noqa: E402


@pytest.mark.parametrize("env,platform,expected", [
    ({"SDL_VIDEODRIVER": "dummy"}, "linux", ["dummy"]),
    ({"SDL_VIDEODRIVER": "x11", "DISPLAY": ":0"}, "linux", ["x11", "dummy"]),
    ({}, "linux", ["kmsdrm", "dummy"]),  # Pi OS Lite / a service on the console
    ({"DISPLAY": ":0"}, "linux", [None, "dummy"]),  # a desktop: SDL picks x11/wayland
    ({"WAYLAND_DISPLAY": "wayland-1"}, "linux", [None, "dummy"]),
    ({}, "darwin", [None, "dummy"]),
], ids=["explicit-dummy", "explicit", "console", "x11", "wayland", "mac"])
def test_driver_choice(env, platform, expected):
    assert choose_drivers(env, platform) == expected


@pytest.fixture
def video_env(monkeypatch):
    """open_display sets SDL_VIDEODRIVER; monkeypatch puts the test environment back."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    yield monkeypatch
    pygame.display.quit()


def test_open_display_full_screen_hides_the_cursor(video_env):
    display = open_display(size=(800, 480), fullscreen=True)
    try:
        assert display.driver == "dummy" and not display.real
        assert display.size == (800, 480)
        assert pygame.mouse.get_visible() is False
    finally:
        display.close()


def test_a_driver_that_fails_falls_back_loudly(video_env, caplog):
    video_env.setenv("SDL_VIDEODRIVER", "no-such-driver")
    with caplog.at_level(logging.WARNING, logger="device.display"):
        display = open_display(size=(640, 400), fullscreen=False)
    try:
        assert display.driver == "dummy"
        assert "no-such-driver" in caplog.text and "NOT shown" in caplog.text
    finally:
        display.close()


def test_screen_on_a_display_ticks_until_the_window_closes(video_env):
    from kiosk.config import parse
    from kiosk.door.show import Screen

    cfg = parse('[device]\nsite="s"\nid="d"\n[venue]\nid="v"\nname="Quán cà phê Giảng"\n'
                'qr_content="https://qr.example.vn/v/1"\n[screen]\nsize="1024x600"\nfullscreen=false\n')
    screen = Screen(cfg.screen, cfg.venue, policy=cfg.policy)
    try:
        assert screen.display is not None and screen.surface.get_size() == (1024, 600)
        assert screen.tick() is True
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        assert screen.tick() is False
    finally:
        screen.close()
        screen.close()
    assert screen.tick() is False
