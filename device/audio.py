"""Spoken verdicts: a short phrase through the speaker, for visitors who cannot see the screen.

Two phrases, "Mời vào / Welcome" and "Xin gặp bảo vệ / Please see the guard",
are made ready when the kiosk starts (pre-recorded ``welcome.wav`` and
``see-guard.wav`` from ``[audio] directory``, or rendered once with espeak-ng),
and kept in memory as mixer sounds. Saying one is ``Channel.play``: the
mixer's own thread plays it, so a call returns at once and audio never
delays a verdict; the next phrase cuts the one still playing short, as the
next verdict replaces the one on screen.

Like the other hardware seams: :class:`Speaker` is the interface,
:class:`NullSpeaker` stands in when audio is off (the default) or cannot
work, :class:`RecordingSpeaker` is the first-class fake that remembers what
was said, and :func:`open_speaker` picks one from the ``[audio]`` section.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger(__name__)

try:  # the hardware layer's exception root, where this tree has it
    from device import DeviceValueError as _SettingError
except ImportError:  # pragma: no cover - older tree: the builtin it stands for
    _SettingError = ValueError  # type: ignore[misc,assignment]

WELCOME, SEE_GUARD = "welcome", "see-guard"
# What is said, Vietnamese first, for a vi+en venue (espeak-ng voice, text).
PHRASES = {
    WELCOME: (("vi", "Mời vào"), ("en", "Welcome")),
    SEE_GUARD: (("vi", "Xin gặp bảo vệ"), ("en", "Please see the guard")),
}
MAX_WAV_BYTES = 8 * 1024 * 1024  # a pre-recorded phrase is a second or two, never a song
PAUSE_SECONDS = 0.25  # between the Vietnamese and the English phrase


class AudioError(_SettingError):
    """An ``[audio]`` setting that cannot work (a missing or broken recording): exit 2."""

    exit_code = 2


class Speaker(ABC):
    """Says a verdict's phrase. Every call returns at once; none raises once the speaker is open."""

    @abstractmethod
    def welcome(self) -> None:
        """Say "Mời vào / Welcome" (the door opens, or a duplicate is let in)."""

    @abstractmethod
    def see_guard(self) -> None:
        """Say "Xin gặp bảo vệ / Please see the guard" (every other verdict)."""

    def close(self) -> None:
        """Release the sound device. Idempotent."""

    def __enter__(self) -> "Speaker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class NullSpeaker(Speaker):
    """Audio off: says nothing."""

    def welcome(self) -> None:
        pass

    def see_guard(self) -> None:
        pass


class RecordingSpeaker(Speaker):
    """The fake for tests and the demo: remembers each phrase said, in order, in ``spoken``."""

    def __init__(self) -> None:
        self.spoken: list[str] = []
        self.closed = False
        self._lock = threading.Lock()

    def welcome(self) -> None:
        with self._lock:
            self.spoken.append(WELCOME)

    def see_guard(self) -> None:
        with self._lock:
            self.spoken.append(SEE_GUARD)

    def close(self) -> None:
        self.closed = True


class MixerSpeaker(Speaker):
    """Plays pre-rendered WAV phrases through pygame.mixer on one reserved channel."""

    def __init__(self, phrases: dict[str, bytes], volume: float = 0.8):
        import pygame

        self._pygame = pygame
        if not pygame.mixer.get_init():
            pygame.mixer.init()  # raises pygame.error without a sound device
        self._sounds = {}
        for key, data in phrases.items():
            sound = pygame.mixer.Sound(file=io.BytesIO(data))
            sound.set_volume(max(0.0, min(1.0, float(volume))))
            self._sounds[key] = sound
        pygame.mixer.set_reserved(1)
        self.channel = pygame.mixer.Channel(0)
        self.last: str | None = None  # the phrase started last (for the guard's log and tests)
        self._closed = False

    def _say(self, key: str) -> None:
        if self._closed:
            return
        try:
            self.channel.stop()  # the new verdict's phrase, not the end of the old one
            self.channel.play(self._sounds[key])
            self.last = key
        except self._pygame.error as exc:  # a sound device unplugged mid-run: the verdict goes on without it
            log.warning("speaker: cannot play %s: %s", key, exc)

    def welcome(self) -> None:
        self._say(WELCOME)

    def see_guard(self) -> None:
        self._say(SEE_GUARD)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.channel.stop()
            self._pygame.mixer.quit()
        except self._pygame.error:
            pass


# -- the phrases, ready before the first visitor ---------------------------------------------------------
def _read_wav(path: str) -> bytes:
    """A pre-recorded phrase: a regular, size-capped, readable WAV file, or AudioError naming it."""
    if not os.path.isfile(path):
        raise AudioError(f"[audio] directory: {path} is missing (record welcome.wav and see-guard.wav, "
                         "or leave directory empty to have espeak-ng speak)")
    if os.path.getsize(path) > MAX_WAV_BYTES:
        raise AudioError(f"[audio] directory: {path} is larger than {MAX_WAV_BYTES // (1024 * 1024)} MB")
    with open(path, "rb") as f:
        data = f.read(MAX_WAV_BYTES + 1)
    try:
        with wave.open(io.BytesIO(data)) as w:
            if w.getnframes() == 0:
                raise AudioError(f"[audio] directory: {path} has no sound in it")
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"[audio] directory: {path} is not a WAV file ({exc})") from None
    return data


def _espeak(voice: str, text: str, workdir: str, exe: str) -> wave.Wave_read:
    out = os.path.join(workdir, f"{voice}.wav")
    subprocess.run([exe, "-v", voice, "-s", "150", "-w", out, text], check=True, capture_output=True, timeout=30)
    with open(out, "rb") as f:
        return wave.open(io.BytesIO(f.read()))


def render_phrase(key: str, language: str = "vi+en", exe: str | None = None) -> bytes:
    """One phrase as WAV bytes, spoken by espeak-ng in the venue's language(s), Vietnamese first."""
    exe = exe or shutil.which("espeak-ng")
    if not exe:
        raise FileNotFoundError("espeak-ng is not installed (apt install espeak-ng)")
    parts = [(v, t) for v, t in PHRASES[key] if language == "vi+en" or v == language] or list(PHRASES[key])
    frames, params = [], None
    with tempfile.TemporaryDirectory(prefix="kiosk-audio-") as tmp:
        for voice, text in parts:
            with _espeak(voice, text, tmp, exe) as w:
                params = params or w.getparams()
                if frames:  # a breath between the two languages
                    frames.append(b"\0" * int(params.framerate * PAUSE_SECONDS) * params.sampwidth * params.nchannels)
                frames.append(w.readframes(w.getnframes()))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(params.nchannels)
        w.setsampwidth(params.sampwidth)
        w.setframerate(params.framerate)
        w.writeframes(b"".join(frames))
    return out.getvalue()


def load_phrases(directory: str = "", language: str = "vi+en") -> dict[str, bytes]:
    """Both phrases as WAV bytes: from ``directory`` (welcome.wav, see-guard.wav) or rendered with espeak-ng."""
    if directory:
        directory = os.path.expanduser(directory)
        return {key: _read_wav(os.path.join(directory, f"{key}.wav")) for key in PHRASES}
    return {key: render_phrase(key, language) for key in PHRASES}


def open_speaker(audio_config: Any, language: str = "vi+en") -> Speaker:
    """The speaker for ``[audio]``: a NullSpeaker when off; never silent about a speaker that cannot work.

    A broken recording in ``[audio] directory`` is a setting to fix
    (:class:`AudioError`). A missing sound device or espeak-ng is logged as
    a WARNING and the kiosk goes on without speech: the screen, lights and
    buzzer still tell the visitor.
    """
    if not getattr(audio_config, "enabled", False):
        return NullSpeaker()
    phrases_dir = getattr(audio_config, "directory", "") or ""
    try:
        phrases = load_phrases(phrases_dir, language)  # AudioError (a recording to fix) goes up
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
        log.warning("spoken verdicts OFF: cannot render the phrases with espeak-ng: %s", exc)
        return NullSpeaker()
    try:
        speaker = MixerSpeaker(phrases, getattr(audio_config, "volume", 0.8))
    except ImportError as exc:
        log.warning("spoken verdicts OFF: pygame is not installed (%s)", exc)
        return NullSpeaker()
    except Exception as exc:  # pygame.error (no sound device) and SDL's decoding errors
        log.warning("spoken verdicts OFF: no sound device (%s: %s)", type(exc).__name__, exc)
        return NullSpeaker()
    log.info("spoken verdicts on (%s)", f"recordings in {phrases_dir}" if phrases_dir else "espeak-ng")
    return speaker
