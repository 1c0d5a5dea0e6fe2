"""The seeded phone-screen frame generator: reproducible, the right size, codes where promised."""

from __future__ import annotations

import random

import numpy as np

from kiosk.testing.screenframes import render, sample_payload, screen_frames


def test_frames_are_reproducible_from_their_seed():
    a = screen_frames(3, (640, 480), seed=5)
    b = screen_frames(3, (640, 480), seed=5)
    assert all(np.array_equal(x.image, y.image) and x.text == y.text for x, y in zip(a, b))
    c = screen_frames(3, (640, 480), seed=6)
    assert not np.array_equal(a[0].image, c[0].image)


def test_frames_are_grey_at_the_asked_size():
    for size in ((640, 480), (1280, 720)):
        f = screen_frames(1, size, seed=1)[0]
        assert f.image.shape == (size[1], size[0]) and f.image.dtype == np.uint8
        assert f.params["size"] == f"{size[0]}x{size[1]}"


def test_no_code_frames_carry_no_text():
    assert all(f.text == "" for f in screen_frames(4, seed=3, with_code=False))


def test_payloads_look_like_what_visitors_show():
    kinds = {sample_payload(random.Random(i)).split(":")[0].split("|")[0][:5] for i in range(60)}
    assert "HC1" in kinds and "PCCOV" in kinds and "https" in kinds


def test_a_clean_frame_is_readable():
    from kiosk.door.decode.decoders import ZxingDecoder

    readable = 0
    for seed in range(10):
        f = render("HC1:TEST", (640, 480), seed)
        readable += "HC1:TEST" in {d.text for d in ZxingDecoder().decode(f.image)}
    assert readable >= 5  # a short code is big on screen; most conditions leave it readable
