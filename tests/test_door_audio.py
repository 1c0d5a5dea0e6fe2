"""Spoken verdicts in the assembled kiosk: ``[audio] enabled = true`` through the real flow.

The kiosk is built by ``assemble`` (real decoders, verifiers, ledger, mock pins);
its speaker is the real :class:`device.audio.MixerSpeaker` on SDL's dummy audio
driver, with the phrases rendered by espeak-ng or read from recordings. The
test watches, per check-in, in what order the flow signalled and spoke, and
what the mixer was doing when the flow finished with the visitor.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from device.audio import SEE_GUARD, WELCOME, MixerSpeaker
from helpers import kiosk_config, signed_dcc
from kiosk.wire import reasons
from kiosk.testing.visitors import replay_frames

RELAY = 23  # kiosk_config's relay pin


def audio_config(tmp_path: Path, audio: str):
    return kiosk_config(tmp_path, extra=f"enabled = false\n[audio]\n{audio}\n")


def visitors():
    """An accepted, signed code (the door opens) then a web link (rejected: see the guard)."""
    from kiosk.testing.visitors import Sample

    return [Sample("signed EU DCC", signed_dcc(), "accept", reasons.OK),
            Sample("a web link", "https://example.com/menu", "reject", reasons.UNKNOWN_FORMAT)]


def run_with_audio(cfg, items):
    """Run the assembled kiosk over the items; returns (events, checkins, pins, speaker, lengths).

    events: what the flow did, in order: ("signal", verdict, open_door), ("speak", phrase, playing-after-return),
    ("done", verdict, phrase playing, channel busy) once the flow is finished with the visitor.
    """
    from device.frames import ReplaySource
    from gpiozero.pins.mock import MockFactory

    from kiosk.door.assembly import assemble

    events: list[tuple] = []
    checkins = []

    def done(checkin, seq, code):
        checkins.append(checkin)
        events.append(("done", checkin.verdict, speaker.last, speaker.channel.get_busy()))

    pins = MockFactory()
    source = ReplaySource(replay_frames(items, frames_per_code=3, gap_frames=2), fps=0)
    k = assemble(cfg, source=source, pin_factory=pins, headless=True, on_checkin=done)
    speaker = k.stages.speaker
    assert isinstance(speaker, MixerSpeaker), f"[audio] enabled gave {type(speaker).__name__}"
    assert k.flow.speaker is speaker

    signals = k.stages.signals
    real_accept, real_reject = signals.accept, signals.reject

    def accept(open_door=True, **kw):
        events.append(("signal", "accept", open_door))
        real_accept(open_door=open_door, **kw)

    def reject(**kw):
        events.append(("signal", "reject", False))
        real_reject(**kw)

    signals.accept, signals.reject = accept, reject
    real_welcome, real_see_guard = speaker.welcome, speaker.see_guard

    def welcome():
        real_welcome()
        events.append(("speak", WELCOME, speaker.channel.get_busy()))

    def see_guard():
        real_see_guard()
        events.append(("speak", SEE_GUARD, speaker.channel.get_busy()))

    speaker.welcome, speaker.see_guard = welcome, see_guard
    lengths = {key: sound.get_length() for key, sound in speaker._sounds.items()}  # before shutdown closes the mixer
    assert k.run(until_exhausted=True) == 0
    return events, checkins, pins, speaker, lengths


def test_espeak_says_welcome_when_the_door_opens_and_see_guard_on_a_reject(tmp_path):
    cfg = audio_config(tmp_path, "enabled = true\nvolume = 0.5")
    events, checkins, pins, speaker, lengths = run_with_audio(cfg, visitors())
    assert [(c.verdict, c.reason, c.opens_door) for c in checkins] == [("accept", "ok", True),
                                                                       ("reject", reasons.UNKNOWN_FORMAT, False)]
    # per visitor: the signal (the door) first, then the phrase, then the flow is done with them
    assert [e[:2] for e in events] == [("signal", "accept"), ("speak", WELCOME), ("done", "accept"),
                                       ("signal", "reject"), ("speak", SEE_GUARD), ("done", "reject")]
    assert events[0][2] is True, "the door was told to open"
    assert any(st.state for st in pins.pin(RELAY).states), "the relay opened for the accepted visitor"
    # espeak-ng rendered both phrases: sound that lasts, not an empty buffer
    assert lengths[WELCOME] > 0.5 and lengths[SEE_GUARD] > 0.5
    assert speaker.last == SEE_GUARD
    assert speaker._closed, "the kiosk's shutdown released the sound device"


def long_recordings(directory: Path, seconds: int = 120) -> Path:
    """welcome.wav and see-guard.wav that play far longer than any check-in takes."""
    directory.mkdir()
    rate = 8000
    for name in ("welcome", "see-guard"):
        with wave.open(str(directory / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(b"\x10\x00\xf0\xff" * (rate * seconds // 2))
    return directory


def test_a_verdict_never_waits_for_its_phrase(tmp_path):
    """Each phrase plays for two minutes: the flow finishes with every visitor while their phrase still
    plays, and the next visitor's phrase cuts the last one short (the verdict is not queued behind it)."""
    recordings = long_recordings(tmp_path / "phrases")
    cfg = audio_config(tmp_path, f'enabled = true\ndirectory = "{recordings}"')
    events, checkins, _, speaker, lengths = run_with_audio(cfg, visitors())
    # pygame 2.1 (Bookworm) resamples to the mixer rate, so the length is 120 s to within a sample or so
    assert lengths == pytest.approx({WELCOME: 120.0, SEE_GUARD: 120.0}, abs=0.01), "the recordings were used, not espeak-ng"
    speaks = [e for e in events if e[0] == "speak"]
    assert speaks == [("speak", WELCOME, True), ("speak", SEE_GUARD, True)], "each call returned while playing"
    dones = [e for e in events if e[0] == "done"]
    assert dones == [("done", "accept", WELCOME, True), ("done", "reject", SEE_GUARD, True)]
    assert len(checkins) == 2


def test_audio_off_is_a_silent_speaker(tmp_path):
    from device.audio import NullSpeaker

    from kiosk.door.assembly import assemble

    k = assemble(audio_config(tmp_path, "enabled = false"), headless=True)
    try:
        assert isinstance(k.stages.speaker, NullSpeaker)
    finally:
        k.shutdown()


@pytest.mark.parametrize("broken", ["missing", "not-a-wav"])
def test_a_broken_recording_is_a_setting_to_fix(tmp_path, broken):
    from device.audio import AudioError

    from kiosk.door.assembly import assemble

    phrases = tmp_path / "phrases"
    phrases.mkdir()
    if broken == "not-a-wav":
        for name in ("welcome", "see-guard"):
            (phrases / f"{name}.wav").write_bytes(b"not a wav file")
    cfg = audio_config(tmp_path, f'enabled = true\ndirectory = "{phrases}"')
    with pytest.raises(AudioError, match=r"\[audio\] directory: .*welcome\.wav"):
        assemble(cfg, headless=True)
