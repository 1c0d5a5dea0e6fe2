"""Spoken verdicts (device/audio.py): off by default, ready before the first visitor, never in the verdict's way.

Real espeak-ng renders the phrases and real pygame.mixer plays them through SDL's dummy audio
driver (SDL_AUDIODRIVER=dummy consumes the samples at the real rate, as a sound card would).
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import struct
import wave
from dataclasses import dataclass

import pytest

from device import audio
from device.audio import SEE_GUARD, WELCOME, AudioError, NullSpeaker, RecordingSpeaker, open_speaker
from kiosk.config import parse

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt)")


@dataclass
class AudioConfig:
    enabled: bool = True
    directory: str = ""
    volume: float = 0.8


def tone_wav(seconds: float, hz: float = 440.0, rate: int = 22050) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
                               for i in range(int(seconds * rate))))
    return out.getvalue()


def wav_stats(data: bytes) -> tuple[float, int]:
    """(duration in seconds, peak amplitude)."""
    with wave.open(io.BytesIO(data)) as w:
        frames = w.readframes(w.getnframes())
        peak = max(abs(v) for (v,) in struct.iter_unpack("<h", frames)) if w.getsampwidth() == 2 else 0
        return w.getnframes() / w.getframerate(), peak


@pytest.fixture
def recordings(tmp_path):
    """Pre-recorded phrases, long enough that "still playing" right after the call is unambiguous."""
    (tmp_path / "welcome.wav").write_bytes(tone_wav(6.0, 660))
    (tmp_path / "see-guard.wav").write_bytes(tone_wav(6.0, 330))
    return tmp_path


def test_audio_is_off_by_default():
    cfg = parse('[device]\nsite="s"\nid="k"\n[venue]\nid="V"\nname="N"\nqr_content="x"\n')
    assert cfg.audio.enabled is False
    speaker = open_speaker(cfg.audio)
    assert isinstance(speaker, NullSpeaker)
    speaker.welcome()
    speaker.see_guard()
    speaker.close()


def test_the_fake_remembers_what_was_said():
    with RecordingSpeaker() as speaker:
        speaker.welcome()
        speaker.see_guard()
        speaker.welcome()
        assert speaker.spoken == [WELCOME, SEE_GUARD, WELCOME]
    assert speaker.closed


@needs_espeak
def test_espeak_ng_renders_both_phrases_in_both_languages():
    phrases = audio.load_phrases("", "vi+en")
    assert set(phrases) == {WELCOME, SEE_GUARD}
    for key, data in phrases.items():
        seconds, peak = wav_stats(data)
        assert 0.5 < seconds < 6 and peak > 1000, key  # speech, not silence
    vi_only, _ = wav_stats(audio.render_phrase(SEE_GUARD, "vi"))
    both, _ = wav_stats(phrases[SEE_GUARD])
    assert both > vi_only + audio.PAUSE_SECONDS  # the English phrase follows the Vietnamese


@needs_espeak
def test_spoken_phrase_plays_in_the_background_with_espeak(monkeypatch):
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    speaker = open_speaker(AudioConfig())
    try:
        assert isinstance(speaker, audio.MixerSpeaker)
        speaker.welcome()
        assert speaker.last == WELCOME and speaker.channel.get_busy()
    finally:
        speaker.close()


def test_a_phrase_never_waits_for_the_sound_to_finish_and_the_next_one_cuts_it_short(monkeypatch, recordings):
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    speaker = open_speaker(AudioConfig(directory=str(recordings), volume=0.5))
    try:
        assert isinstance(speaker, audio.MixerSpeaker)
        speaker.welcome()
        # The call is back while its 6-second sound is still playing: it only started it.
        assert speaker.channel.get_busy() and speaker.channel.get_sound() is speaker._sounds[WELCOME]
        speaker.see_guard()
        assert speaker.channel.get_busy() and speaker.channel.get_sound() is speaker._sounds[SEE_GUARD]
        assert speaker._sounds[WELCOME].get_volume() == pytest.approx(0.5, abs=0.01)
    finally:
        speaker.close()
    speaker.close()  # idempotent
    speaker.welcome()  # after close: nothing, no error


@pytest.mark.parametrize("damage,message", [
    ("missing", "see-guard.wav is missing"),
    ("junk", "is not a WAV file"),
    ("empty", "has no sound"),
])
def test_a_broken_recording_is_a_setting_to_fix(recordings, damage, message):
    target = recordings / "see-guard.wav"
    if damage == "missing":
        target.unlink()
    elif damage == "junk":
        target.write_bytes(b"RIFF not really")
    else:
        target.write_bytes(tone_wav(0.0))
    with pytest.raises(AudioError, match=message) as err:
        open_speaker(AudioConfig(directory=str(recordings)))
    assert "[audio] directory" in str(err.value) and err.value.exit_code == 2
    assert isinstance(err.value, ValueError)


def test_no_sound_device_means_no_speech_with_a_warning(monkeypatch, recordings, caplog):
    pygame = pytest.importorskip("pygame")

    def no_device(*a, **k):
        raise pygame.error("No available audio device")

    monkeypatch.setattr(pygame.mixer, "get_init", lambda: None)
    monkeypatch.setattr(pygame.mixer, "init", no_device)
    with caplog.at_level(logging.WARNING):
        speaker = open_speaker(AudioConfig(directory=str(recordings)))
    assert isinstance(speaker, NullSpeaker)
    assert "spoken verdicts OFF" in caplog.text and "No available audio device" in caplog.text


def test_no_espeak_ng_means_no_speech_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING):
        speaker = open_speaker(AudioConfig())
    assert isinstance(speaker, NullSpeaker)
    assert "espeak-ng is not installed" in caplog.text
