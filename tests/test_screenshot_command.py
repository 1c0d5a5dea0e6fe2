"""``kiosk screenshot``: one screen to a PNG, without a display."""

from __future__ import annotations

import pytest

pygame = pytest.importorskip("pygame")
np = pytest.importorskip("numpy")
zxingcpp = pytest.importorskip("zxingcpp")

from kiosk.cli import main  # noqa: E402

QR = "https://qr.tokhaiyte.vn/dd/HN-HK-000123"


@pytest.fixture
def config_file(tmp_path):
    p = tmp_path / "kiosk.toml"
    p.write_text(f"""
[device]
site = "hn"
id = "k1"
[venue]
id = "HN-HK-000123"
name = "Nhà sách Tràng Tiền"
address = "61 Tràng Tiền, Hoàn Kiếm, Hà Nội"
qr_content = "{QR}"
[screen]
size = "1024x600"
""", encoding="utf-8")
    return p


def load(path):
    img = pygame.image.load(str(path))
    return img.get_size(), np.ascontiguousarray(pygame.surfarray.array3d(img).transpose(1, 0, 2))


@pytest.mark.parametrize("size", ["800x480", "480x800", "1920x1080"])
def test_idle_screenshot_has_a_readable_venue_qr(config_file, tmp_path, size, capsys):
    out = tmp_path / "idle.png"
    assert main(["screenshot", "--config", str(config_file), "--state", "idle", "--size", size, "--out", str(out)]) == 0
    got, img = load(out)
    assert got == tuple(int(v) for v in size.split("x"))
    assert [r.text for r in zxingcpp.read_barcodes(img)] == [QR]
    assert "Hello from the pygame community" not in capsys.readouterr().out


def test_size_defaults_to_the_config(config_file, tmp_path):
    out = tmp_path / "s.png"
    assert main(["screenshot", "--config", str(config_file), "--out", str(out)]) == 0
    assert load(out)[0] == (1024, 600)


@pytest.mark.parametrize("state,colour", [("accept", (27, 128, 62)), ("reject", (190, 30, 45)),
                                          ("duplicate", (21, 88, 176))])
def test_verdict_screenshots(config_file, tmp_path, state, colour):
    out = tmp_path / f"{state}.png"
    assert main(["screenshot", "--config", str(config_file), "--state", state, "--size", "800x480",
                 "--out", str(out)]) == 0
    _, img = load(out)
    assert tuple(img[10, 400]) == colour


def test_live_screenshot_outlines_the_sample_code(config_file, tmp_path):
    out = tmp_path / "live.png"
    assert main(["screenshot", "--config", str(config_file), "--state", "live", "--size", "800x480",
                 "--out", str(out)]) == 0
    _, img = load(out)
    assert (img == np.array((255, 214, 0))).all(axis=2).sum() > 500


@pytest.mark.parametrize("args,message", [
    (["--size", "800by480"], "WIDTHxHEIGHT"),
    (["--size", "10x10"], "outside"),
    (["--reason", "bogus"], "unknown reason"),
    (["--out", "/no/such/folder/x.png"], "does not exist"),
    (["--out", "picture.jpg"], ".png"),
])
def test_bad_arguments_exit_2_with_a_message(config_file, tmp_path, args, message, capsys):
    argv = ["screenshot", "--config", str(config_file), "--out", str(tmp_path / "x.png"), *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_config_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[device]\nsite='s'\n")
    assert main(["screenshot", "--config", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "configuration error" in capsys.readouterr().err


def test_committed_idle_screenshots_show_the_demo_venue_code():
    """docs/screenshots stay in step with config/demo.toml (regenerate them with `kiosk screenshot`)."""
    from pathlib import Path

    from kiosk.config import load as load_config

    root = Path(__file__).resolve().parent.parent
    expected = load_config(root / "config" / "demo.toml").venue.qr_content
    shots = sorted((root / "docs" / "screenshots").glob("idle-*.png"))
    assert len(shots) >= 2
    for shot in shots:
        _, img = load(shot)
        assert [r.text for r in zxingcpp.read_barcodes(img)] == [expected], shot.name


@pytest.mark.parametrize("state,colour", [("unverified", (255, 183, 3)), ("out-of-service", (58, 62, 70)),
                                          ("duplicate-refused", (190, 30, 45)), ("guard", (32, 33, 36))])
@pytest.mark.parametrize("size", ["800x480", "480x800", "1920x1080"])
def test_door_screenshots(config_file, tmp_path, state, colour, size):
    out = tmp_path / f"{state}.png"
    assert main(["screenshot", "--config", str(config_file), "--state", state, "--size", size, "--out", str(out)]) == 0
    got, img = load(out)
    assert got == tuple(int(v) for v in size.split("x"))
    body = img[: int(img.shape[0] * 0.9)].reshape(-1, 3)
    colours, counts = np.unique(body, axis=0, return_counts=True)
    assert tuple(int(c) for c in colours[counts.argmax()]) == colour


def test_degraded_words_reach_the_guards_bar(config_file, tmp_path, monkeypatch):
    from kiosk.door.show.fonts import Fonts

    drawn = []
    original = Fonts.render
    monkeypatch.setattr(Fonts, "render", lambda self, text, *a, **k: drawn.append(text) or original(self, text, *a, **k))
    out = tmp_path / "bar.png"
    assert main(["screenshot", "--config", str(config_file), "--state", "idle", "--size", "1920x1080",
                 "--degraded", "gpio-mock", "--out", str(out)]) == 0
    assert "GPIO giả lập / GPIO simulated" in drawn
