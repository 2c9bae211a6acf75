"""faster-whisper with the bundled tiny.en model, on real speech."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mediaflows import speech
from mediaflows.errors import MediaError
from mediaflows.media import audio as audio_io
from mediaflows.models import TranscribeRequest
from mediaflows.settings import get_settings
from mediaflows.speech import Segment, Word, whisper
from tests.media_factory import make_speech, make_video
from tests.wer import wer

JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def test_jfk_word_error_rate(jfk: Path) -> None:
    audio = audio_io.decode_audio(jfk, "jfk.flac")
    assert len(audio) == pytest.approx(11 * 16000, rel=0.01)
    result = whisper.transcribe(audio, TranscribeRequest())
    assert result.language == "en"
    # tiny.en hears English only: it detects nothing, so no probability is made up.
    assert result.language_probability is None and not result.language_doubtful
    assert wer(JFK, result.text) <= 0.15, result.text
    words = [w for s in result.segments for w in s.words]
    assert words and all(0 <= w.start <= w.end <= result.duration + 0.5 for w in words)


def test_model_is_loaded_once_per_process(jfk: Path) -> None:
    audio = audio_io.decode_audio(jfk, "jfk.flac")[: 16000 * 3]
    whisper.transcribe(audio, TranscribeRequest())
    loaded = whisper.loaded_models()  # this one, and any other model earlier tests used
    first = whisper.load_model(whisper.default_model(), get_settings().whisper)
    whisper.transcribe(audio, TranscribeRequest(beam_size=1))
    assert whisper.load_model(whisper.default_model(), get_settings().whisper) is first
    assert whisper.loaded_models() == loaded


def test_silence_gives_no_segments(silence: Path) -> None:
    result = whisper.transcribe(audio_io.decode_audio(silence, "s"), TranscribeRequest())
    assert result.segments == () and result.text == ""


def test_video_without_audio_is_an_input_error(tmp_path: Path) -> None:
    mute = make_video(tmp_path / "mute.mp4", ["-an", "-c:v", "libx264"], seconds=1)
    with pytest.raises(MediaError, match="no audio stream"):
        audio_io.decode_audio(mute, "mute.mp4")


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
    assert speech.is_hallucination(segment, before, speech.Guard()) is dropped


LOOP_PHRASE = "thank you for watching " * 6


def test_guard_drops_probable_silence() -> None:
    quiet = Segment(start=0, end=2, text="Thanks for watching!", no_speech_prob=0.9,
                    avg_logprob=-1.5)  # fmt: skip
    assert speech.is_hallucination(quiet, None, speech.Guard())


def _timed(text: str, start: float, word_s: float, probability: float = 0.95) -> Segment:
    words = text.split()
    timed = tuple(
        Word(start=start + i * word_s, end=start + (i + 1) * word_s, text=" " + w,
             probability=probability)
        for i, w in enumerate(words)
    )  # fmt: skip
    return Segment(start=start, end=start + len(words) * word_s, text=text, words=timed,
                   avg_logprob=-0.3, compression_ratio=2.6)  # fmt: skip


@pytest.mark.parametrize(
    "segment,dropped",
    [
        (_timed("word word word word word word word", 0, 0.4), False),  # spoken: 2.5 words/s
        (_timed("no no no no no no", 0, 0.3), False),
        (_timed(LOOP_PHRASE, 0, 0.05), True),  # a loop's timings collapse: 20 words/s
        (_timed(LOOP_PHRASE, 0, 0.4, probability=0.2), True),  # heard without confidence
        (_timed(LOOP_PHRASE * 3, 0, 0.4), True),  # fills 29 s: a loop, not a burst
    ],
)
def test_guard_tells_spoken_repetition_from_a_loop(segment: Segment, dropped: bool) -> None:
    assert speech.is_hallucination(segment, None, speech.Guard()) is dropped


def test_guard_cuts_a_loop_that_follows_speech() -> None:
    """Eight words spoken, then the decoder loops on: forty more squeezed into the last 0.2 s."""
    spoken = _timed("word " * 8, 0, 0.5)
    tail = _timed("word " * 40, 4.0, 0.005)
    looping = spoken.model_copy(update={"end": tail.end, "text": spoken.text + tail.text,
                                        "words": spoken.words + tail.words})  # fmt: skip
    assert speech.is_hallucination(looping, None, speech.Guard())  # as a whole: a loop
    trimmed = speech.guard.trim_loop(looping, speech.Guard())
    assert trimmed.words == spoken.words and trimmed.end == 4.0
    assert trimmed.text == "word word word word word word word word"
    assert not speech.is_hallucination(trimmed, None, speech.Guard())
    # A loop with no speech before it is left whole, and dropped.
    loop = _timed(LOOP_PHRASE, 0, 0.05)
    assert speech.guard.trim_loop(loop, speech.Guard()) is loop


def test_guard_keeps_a_real_repeated_word(tmp_path: Path) -> None:
    """A speaker saying one word ten times (espeak-ng at normal speed, 7.3 s) through the
    bundled model: the repetition has word timings of speech, so its cue is kept; the words the
    model loops on after the speech (squeezed into the last milliseconds) are cut."""
    import ctranslate2

    said = make_speech(tmp_path, ", ".join(["word"] * 10))
    audio = audio_io.decode_audio(said, "said.wav")
    # A repeated word compresses well, so faster-whisper decodes it again at higher
    # temperatures, sampling: about one run in ten then writes garbage ("W-W-W-…") that the
    # guard rightly drops. Seeded, so that the test judges the guard, not the sampler's luck.
    ctranslate2.set_random_seed(0)
    result = whisper.transcribe(audio, TranscribeRequest())
    words = [w for s in result.segments for w in s.words if "word" in w.text.lower()]
    assert result.dropped == 0 and 8 <= len(words) <= 14, result
    assert all(s.end <= len(audio) / 16000 + 0.1 for s in result.segments)
    assert any(speech.guard.spoken_repetition(s, speech.Guard()) for s in result.segments)
    assert all(not speech.is_hallucination(s, None, speech.Guard()) for s in result.segments)


LONG_TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Every morning we walk to the market and buy fresh bread. "
    "Please call me when you arrive at the station. "
    "The weather today is cold, but tomorrow it will be warm again. "
    "She reads a book while the children play in the garden. "
    "My brother builds small wooden boats in his garage. "
    "We watched the sun go down behind the hills. "
    "The train to the city leaves at seven in the morning. "
    "Could you open the window and let some fresh air in. "
    "Our neighbours planted apple trees along the fence."
)


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech(tmp_path_factory.mktemp("long-speech"), LONG_TEXT)


def test_windows_cover_the_stream_and_are_cut_in_pauses(long_speech: Path) -> None:
    whole = audio_io.decode_audio(long_speech, "long.wav")
    windows = list(audio_io.audio_windows(long_speech, "long.wav", window_s=10))
    assert len(windows) >= 3
    assert np.array_equal(np.concatenate([samples for _, samples in windows]), whole)
    offsets = np.cumsum([0] + [len(samples) for _, samples in windows[:-1]]) / audio_io.SAMPLE_RATE
    assert [start for start, _ in windows] == pytest.approx(list(offsets))
    speech_power = float(np.mean(whole**2))
    for start, _ in windows[1:]:
        cut = round(start * audio_io.SAMPLE_RATE)
        around = whole[cut - 800 : cut + 800]  # the 100 ms around the cut
        assert float(np.mean(around**2)) < 0.01 * speech_power, start


def test_windowed_transcription_keeps_words_and_time(long_speech: Path) -> None:
    windows = audio_io.audio_windows(long_speech, "long.wav", window_s=10)
    progress: list[float] = []
    result = whisper.transcribe_windows(
        windows, TranscribeRequest(), progress.append, duration_hint=40.0
    )
    assert wer(LONG_TEXT, result.text) <= 0.25, result.text
    starts = [segment.start for segment in result.segments]
    assert starts == sorted(starts)
    assert result.segments[-1].end > 25  # later windows are shifted to their place in the file
    words = [w for s in result.segments for w in s.words]
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert result.duration == pytest.approx(len(audio_io.decode_audio(long_speech, "l")) / 16000)
    assert progress == sorted(progress) and progress[-1] == 1.0


# ---- the bundled models ------------------------------------------------------------------------

GERMAN = "Guten Morgen. Heute ist ein schöner Tag, und wir gehen zusammen in den Park."


def test_the_default_model_is_multilingual_unless_the_request_is_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEDIAFLOWS_WHISPER__MODEL")
    get_settings.cache_clear()
    try:
        assert whisper.model_name(TranscribeRequest(language="en")) == "tiny.en"
        assert whisper.model_name(TranscribeRequest()) == "base"  # detection needs it
        assert whisper.model_name(TranscribeRequest(language="de")) == "base"
        assert whisper.model_name(TranscribeRequest(language="en", task="translate")) == "base"
        assert whisper.model_name(TranscribeRequest(model="small")) == "small"
        assert whisper.model_id(TranscribeRequest()) == "bundled:base"
    finally:
        get_settings.cache_clear()


def test_the_base_model_is_joined_once_and_hears_german(tmp_path: Path) -> None:
    from tests.media_factory import ffmpeg

    first = whisper.base_model()
    weights = Path(first) / "model.bin"
    stamp = weights.stat().st_mtime_ns
    assert whisper.base_model() == first and weights.stat().st_mtime_ns == stamp  # not again
    wav = tmp_path / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "140", "-w", str(wav), GERMAN], check=True)
    flac = tmp_path / "de.flac"
    ffmpeg("-i", str(wav), str(flac))
    samples = audio_io.decode_audio(flac, "de.flac")
    result = whisper.transcribe(samples, TranscribeRequest(model="base", language="de"))
    assert result.language == "de"
    assert wer(GERMAN, result.text) <= 0.4, result.text


#: espeak-ng speech per language, and the WER the bundled base model reached on it (measured:
#: de 0.00, es 0.00, fr 0.53; espeak's French is hard to understand, its Mandarin is not
#: intelligible at all: tone numbers read out, so no CJK case here).
SPOKEN = {
    "de": (GERMAN, 0.15),
    "es": ("Buenos días a todos. Hoy hace buen tiempo, y vamos juntos al mercado.", 0.15),
    "fr": ("Le chat dort sur la table. Nous mangeons du pain et du fromage ce soir.", 0.7),
}


@pytest.mark.parametrize("language", sorted(SPOKEN))
def test_the_base_model_detects_the_spoken_language(tmp_path: Path, language: str) -> None:
    text, bound = SPOKEN[language]
    wav = tmp_path / f"{language}.wav"
    subprocess.run(["espeak-ng", "-v", language, "-s", "110" if language == "fr" else "140",
                    "-w", str(wav), text], check=True)  # fmt: skip
    samples = audio_io.decode_audio(wav, wav.name)
    result = whisper.transcribe(samples, TranscribeRequest(model="base"))  # no language given
    assert result.language == language and result.language_probability is not None
    assert result.language_probability > 0.3
    assert result.language_doubtful == (result.language_probability < 0.5)
    assert wer(text, result.text) <= bound, result.text


def test_batched_inference_keeps_the_words_and_their_times(tmp_path: Path) -> None:
    """BatchedInferencePipeline (``whisper.batched``) against sequential decoding on the same 60 s:
    no more word errors, the same words, each word's start within 0.1 s (median). Measured on a
    GPU it once dropped ~10 % of the words; this keeps the check on every machine."""
    from bench.batched_bench import paragraph_speech

    audio, text = paragraph_speech(tmp_path, 60)
    settings = get_settings()
    request = TranscribeRequest(language="en")
    sequential = whisper.transcribe(audio, request, settings=settings)
    on = settings.model_copy(
        update={"whisper": settings.whisper.model_copy(update={"batched": True})}
    )
    batched = whisper.transcribe(audio, request, settings=on)
    assert batched.dropped == 0
    seq_text = " ".join(s.text for s in sequential.segments)
    bat_text = " ".join(s.text for s in batched.segments)
    assert wer(text, bat_text) <= wer(text, seq_text) + 0.01
    seq_words = [w for s in sequential.segments for w in s.words]
    bat_words = [w for s in batched.segments for w in s.words]
    assert len(bat_words) == len(seq_words)
    deltas = sorted(abs(a.start - b.start) for a, b in zip(seq_words, bat_words, strict=True))
    assert deltas[len(deltas) // 2] < 0.1
