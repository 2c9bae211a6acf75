"""faster-whisper with the bundled tiny.en model, on real speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflows import whisper
from mediaflows.errors import MediaError
from mediaflows.models import Segment, TranscribeRequest
from tests.media_factory import make_video
from tests.wer import wer

JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def test_jfk_word_error_rate(jfk: Path) -> None:
    audio = whisper.decode_audio(jfk, "jfk.flac")
    assert len(audio) == pytest.approx(11 * 16000, rel=0.01)
    result = whisper.transcribe(audio, TranscribeRequest())
    assert result.language == "en"
    assert wer(JFK, result.text) <= 0.15, result.text
    words = [w for s in result.segments for w in s.words]
    assert words and all(0 <= w.start <= w.end <= result.duration + 0.5 for w in words)


def test_model_is_loaded_once_per_process(jfk: Path) -> None:
    audio = whisper.decode_audio(jfk, "jfk.flac")[: 16000 * 3]
    whisper.transcribe(audio, TranscribeRequest())
    first = whisper.load_model(whisper.default_model(), whisper.get_settings().whisper)
    whisper.transcribe(audio, TranscribeRequest(beam_size=1))
    assert whisper.load_model(whisper.default_model(), whisper.get_settings().whisper) is first
    assert whisper.loaded_models() == 1


def test_silence_gives_no_segments(silence: Path) -> None:
    result = whisper.transcribe(whisper.decode_audio(silence, "s"), TranscribeRequest())
    assert result.segments == () and result.text == ""


def test_video_without_audio_is_an_input_error(tmp_path: Path) -> None:
    mute = make_video(tmp_path / "mute.mp4", ["-an", "-c:v", "libx264"], seconds=1)
    with pytest.raises(MediaError, match="no audio stream"):
        whisper.decode_audio(mute, "mute.mp4")


@pytest.mark.parametrize(
    "text,previous,dropped",
    [
        ("thank you thank you thank you thank you thank you thank you", None, True),
        ("no no no no no no no no", None, True),
        ("the same words", "The same words", True),
        ("...", None, True),
        ("A normal sentence that says something once.", "Another one.", False),
    ],
)
def test_hallucination_guard(text: str, previous: str | None, dropped: bool) -> None:
    segment = Segment(start=0, end=2, text=text)
    before = Segment(start=0, end=1, text=previous) if previous else None
    assert whisper._is_hallucination(segment, before, whisper.Guard()) is dropped


def test_guard_drops_probable_silence() -> None:
    quiet = Segment(start=0, end=2, text="Thanks for watching!", no_speech_prob=0.9,
                    avg_logprob=-1.5)  # fmt: skip
    assert whisper._is_hallucination(quiet, None, whisper.Guard())
