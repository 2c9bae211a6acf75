"""Transcription by an OpenAI-compatible speech endpoint: the loopback server answers with real
faster-whisper output over real HTTP (multipart uploads), a real Prefect server, real ffmpeg."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flows.generate_srt import generate_srt
from flows.transcribe import transcribe
from mediaflows.errors import ASRRejectedError, InputError
from mediaflows.media import audio
from mediaflows.models import GenerateSrtRequest, SrtResult, TranscribeRequest, TranscribeResult
from mediaflows.settings import get_settings
from mediaflows.speech import whisper
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.asr_server import ASRServer
from tests.conftest import ASR_TEST_KEY, asr_endpoints
from tests.media_factory import SPEECH_TEXT, ffmpeg, make_speech
from tests.runs import run_flow, run_id_of
from tests.subtitle_rules import parse, rule_violations
from tests.wer import wer

PROVIDER = GenerateSrtRequest(provider="loop", language="en")


def _endpoint(monkeypatch: pytest.MonkeyPatch, server: ASRServer, **options: object) -> None:
    monkeypatch.setenv("MEDIAFLOWS_ASR__ENDPOINTS", asr_endpoints(server, **options))
    get_settings.cache_clear()


def _text(content: str) -> str:
    return " ".join(sub.content.replace("\n", " ") for sub in parse(content))


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~40 s: the known text four times, with pauses between (a file to cut into pieces)."""
    directory = tmp_path_factory.mktemp("long")
    wav = directory / "long.wav"
    text = " ".join([SPEECH_TEXT] * 4)
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-g", "10", "-w", str(wav), text],
                   check=True)  # fmt: skip
    out = directory / "long.mp3"
    ffmpeg("-i", str(wav), "-c:a", "libmp3lame", str(out))
    return out


@pytest.mark.parametrize("name", ["speech.mp4", "speech.mp3", "speech.webm"])
def test_generate_srt_by_the_provider_keeps_the_cue_rules(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path], name: str
) -> None:
    source = local_store.import_file("dave", speech_media[name])
    state = run_flow(generate_srt, "dave", source.id, PROVIDER)
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    assert rule_violations(result.content) == []
    # Close to the local model on the same audio (both are tiny.en here: the lossy upload and
    # the file being decoded twice are what may differ).
    local = whisper.transcribe(audio.decode_audio(speech_media[name], name),
                               TranscribeRequest(language="en"))  # fmt: skip
    assert wer(SPEECH_TEXT, _text(result.content)) <= wer(SPEECH_TEXT, local.text) + 0.05
    usage = result.asr
    assert usage is not None and usage.provider == "loop" and usage.pieces == 1
    assert usage.provider_model.startswith("whisper-") and not usage.words_estimated
    assert usage.audio_sent_s == pytest.approx(asr_server.uploads[0].duration, abs=0.1)
    (upload,) = asr_server.uploads
    assert upload.fields["model"] == [usage.provider_model]
    assert upload.fields["response_format"] == ["verbose_json"]
    assert upload.fields["language"] == ["en"]
    assert local_store.get("dave", result.file_id).tools["whisper"].startswith("asr:loop:")


def test_a_file_over_the_upload_limit_is_cut_into_pieces_sent_together(
    asr_server: ASRServer, local_store: ProfileStore, long_speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    asr_server.max_bytes = 60_000  # anything larger gets 413
    _endpoint(monkeypatch, asr_server, max_upload_mb=0.06, bitrate_kbps=24)
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT", "3")
    get_settings.cache_clear()
    source = local_store.import_file("dave", long_speech)
    state = run_flow(generate_srt, "dave", source.id, PROVIDER)
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    uploads = asr_server.uploads
    assert len(uploads) >= 3 and all(u.size <= 60_000 and u.outcome == "ok" for u in uploads)
    assert 2 <= asr_server.max_in_flight <= 3  # concurrent, within the asr limit
    subs = parse(result.content)
    starts = [s.start for s in subs]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(subs))  # no overlap
    assert rule_violations(result.content) == []
    assert subs[-1].end.total_seconds() > 30  # later pieces shifted to their place
    assert wer(" ".join([SPEECH_TEXT] * 4), _text(result.content)) <= 0.25
    assert result.asr is not None and result.asr.pieces == len(uploads)
    total = audio.decode_audio(long_speech, "long.mp3").size / audio.SAMPLE_RATE
    assert result.asr.audio_sent_s == pytest.approx(total, abs=0.2)
    progress = next(a for a in prefect_api.artifacts(state.state_details.flow_run_id)
                    if a.type == "progress")  # fmt: skip
    assert progress.data == 100.0


@pytest.mark.parametrize("mode", ["429", "500", "hang", "malformed"])
def test_a_transient_fault_is_retried(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path], mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # A hang outlasts the client's timeout; a real answer (the model on a loaded CI machine)
    # fits in it.
    _endpoint(monkeypatch, asr_server, timeout_s=6)
    asr_server.set_mode(mode, times=1, retry_after=1, hang_s=9)
    source = local_store.import_file("dave", speech_media["speech.mp3"])
    result: TranscribeResult = run_flow(
        transcribe, "dave", source.id, PROVIDER.transcribe_request()
    ).result()
    assert wer(SPEECH_TEXT, result.text) <= 0.2
    outcomes = [u.outcome for u in asr_server.uploads]
    if mode == "hang":  # a piece that timed out is cut in two, never sent again whole
        assert outcomes == [mode, "ok", "ok"]
        hung, *halves = asr_server.uploads
        assert all(h.size < hung.size for h in halves)
        return
    assert outcomes == [mode, "ok"]
    if mode == "429":
        at = [u.at for u in asr_server.uploads]
        assert at[1] - at[0] >= 0.95  # Retry-After: 1 was honoured


def test_a_refused_key_fails_at_once_and_never_shows(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    asr_server.set_mode("401")  # the server quotes the key in its error
    source = local_store.import_file("dave", speech_media["speech.mp3"])
    state = run_flow(generate_srt, "dave", source.id, PROVIDER)
    assert state.is_failed()
    with pytest.raises(ASRRejectedError, match=r"'loop'.*the API key was refused"):
        state.result()
    assert len(asr_server.uploads) == 1  # not retried
    assert asr_server.uploads[0].authorization == f"Bearer {ASR_TEST_KEY}"  # it was sent
    text = prefect_api.everything_about([run_id_of(state)], tasks=2)
    assert "API key was refused" in text and ASR_TEST_KEY not in text
    assert [f.id for f in local_store.list_files("dave")] == [source.id]  # nothing stored


def _boundary_errors(content: str, reference: TranscribeResult | Any) -> tuple[float, float]:
    """Median distance (s) of the cues' starts and ends to the nearest word start/end of the
    local model's own transcription of the same audio."""
    starts = [w.start for seg in reference.segments for w in seg.words]
    ends = [w.end for seg in reference.segments for w in seg.words]
    subs = parse(content)
    return (
        statistics.median(min(abs(sub.start.total_seconds() - t) for t in starts) for sub in subs),
        statistics.median(min(abs(sub.end.total_seconds() - t) for t in ends) for sub in subs),
    )


def test_segment_times_only_get_word_times_from_the_bundled_model(
    asr_server: ASRServer, local_store: ProfileStore, long_speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An endpoint that gives segment times only: the words' times come from the bundled model
    on the same pieces (matched word by word, the endpoint's text kept). Cue boundaries then sit
    within 0.3 s (median) of the local model's own word times, and closer than when each
    segment's words are spread evenly over it (``align_words: false``)."""
    asr_server.set_mode("segments_only")
    source = local_store.import_file("dave", long_speech)
    aligned: SrtResult = run_flow(generate_srt, "dave", source.id, PROVIDER).result()
    assert aligned.asr is not None and aligned.asr.word_times == "aligned"
    assert not aligned.asr.words_estimated
    assert rule_violations(aligned.content) == []
    assert wer(" ".join([SPEECH_TEXT] * 4), _text(aligned.content)) <= 0.25
    local = whisper.transcribe(audio.decode_audio(long_speech, "long.mp3"),
                               TranscribeRequest(language="en"))  # fmt: skip
    start_err, end_err = _boundary_errors(aligned.content, local)
    assert start_err <= 0.3 and end_err <= 0.3

    _endpoint(monkeypatch, asr_server, align_words=False)
    spread: SrtResult = run_flow(generate_srt, "dave", source.id, PROVIDER).result()
    assert spread.asr is not None and spread.asr.word_times == "estimated"
    assert spread.asr.words_estimated and rule_violations(spread.content) == []
    spread_start, spread_end = _boundary_errors(spread.content, local)
    print(f"cue boundary error vs local words (median s): aligned {start_err:.3f}/{end_err:.3f},"
          f" spread {spread_start:.3f}/{spread_end:.3f}")  # fmt: skip
    assert start_err + end_err <= spread_start + spread_end


def test_the_same_input_twice_sends_nothing_and_a_rerun_sends_only_what_failed(
    asr_server: ASRServer, local_store: ProfileStore, long_speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _endpoint(monkeypatch, asr_server, max_upload_mb=0.06, bitrate_kbps=24)
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT", "1")  # one piece after another
    get_settings.cache_clear()
    source = local_store.import_file("dave", long_speech)
    asr_server.set_mode("401", after=1)  # the second piece is refused: the run stops there
    failed = run_flow(generate_srt, "dave", source.id, PROVIDER)
    assert failed.is_failed() and [u.outcome for u in asr_server.uploads] == ["ok", "401"]
    asr_server.set_mode("ok")
    done = run_flow(generate_srt, "dave", source.id, PROVIDER).result()
    sent = len(asr_server.uploads) - 2
    assert sent == done.asr.pieces - 1  # the first piece came from the cache
    again = run_flow(generate_srt, "dave", source.id, PROVIDER).result()
    other_rules = PROVIDER.model_copy(update={"vtt": True})
    other = run_flow(generate_srt, "dave", source.id, other_rules).result()
    assert again.cached and not other.cached and other.file_id != done.file_id
    assert len(asr_server.uploads) == 2 + sent  # neither sent anything


def test_a_piece_heard_in_another_language_is_asked_again_in_the_files(
    asr_server: ASRServer, local_store: ProfileStore, long_speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _endpoint(monkeypatch, asr_server, max_upload_mb=0.06, bitrate_kbps=24)
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT", "1")
    get_settings.cache_clear()
    asr_server.set_mode("language", times=1, language_name="german", after=1)
    source = local_store.import_file("dave", long_speech)
    request = GenerateSrtRequest(provider="loop")  # no language: detected
    result: SrtResult = run_flow(generate_srt, "dave", source.id, request).result()
    assert result.language == "en"
    outcomes = [u.outcome for u in asr_server.uploads]
    assert outcomes.count("language") == 1 and len(outcomes) == result.asr.pieces + 1
    assert asr_server.uploads[-1].fields["language"] == ["en"]  # asked again, in English
    # The probability is the bundled model's, from its check (the endpoint gives none).
    assert result.asr.language_check is not None and result.asr.language_check.startswith("en ")
    probability = float(result.asr.language_check.split()[1])
    assert result.language_probability == pytest.approx(probability, abs=0.006)
    # What was sent is what is billed: the re-sent piece counts twice.
    sent = sum(u.duration for u in asr_server.uploads)
    assert result.asr.audio_sent_s == pytest.approx(sent, abs=0.3)
    assert sent > audio.decode_audio(long_speech, "long.mp3").size / audio.SAMPLE_RATE + 1


def test_an_unknown_provider_is_refused_naming_the_configured_ones(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    source = local_store.import_file("dave", speech_media["speech.mp3"])
    state = run_flow(transcribe, "dave", source.id, TranscribeRequest(provider="nope"))
    assert state.is_failed()
    with pytest.raises(InputError, match=r"provider 'nope' is not configured.*local, loop"):
        state.result()
    assert asr_server.uploads == []
    schema = GenerateSrtRequest.model_json_schema()["properties"]["provider"]
    assert schema["enum"] == ["local", "loop"]  # the run form offers them


def test_a_batch_on_the_provider_stays_within_the_asr_limit_read_back_from_the_server(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from prefect.client.orchestration import get_client

    from deployments.setup import ensure_concurrency_limits
    from flows.batch import BATCHES

    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT", "2")
    get_settings.cache_clear()
    asr_server.set_mode("ok", latency_s=0.5)  # requests overlap: the limit has work to do
    ids = [local_store.import_file("dave", speech_media[n]).id
           for n in ("speech.mp3", "speech.ogg", "speech.wav", "speech.mkv")]  # fmt: skip
    try:
        ensure_concurrency_limits(get_settings())
        with get_client(sync_client=True) as client:
            assert client.read_concurrency_limit_by_tag("asr").concurrency_limit == 2
        state = asyncio.run(state_of(BATCHES["generate_srt"], profile="dave", file_ids=ids,
                                     request=PROVIDER))  # fmt: skip
        result = state.result()
        assert result.succeeded == 4 and len(asr_server.uploads) == 4
        assert asr_server.max_in_flight <= 2
    finally:
        monkeypatch.delenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT")
        get_settings.cache_clear()
        ensure_concurrency_limits(get_settings())
    # The limit is held around each request (a slot of `tag:asr`), not by the task's tags: a
    # tagged task would hold one slot for the whole file.
    child = result.children[0].run_id
    runs = prefect_api.task_runs(child, expect=1, named="transcribe_by_endpoint")
    assert all("asr" not in r.tags for r in runs)


def test_the_hallucination_guard_applies_to_the_providers_output(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    from tests.asr_server import LOOP

    asr_server.set_mode("hallucinate")
    source = local_store.import_file("dave", speech_media["speech.mp3"])
    result: TranscribeResult = run_flow(transcribe, "dave", source.id,
                                    PROVIDER.transcribe_request()).result()  # fmt: skip
    assert "watching" not in result.text.lower()  # the looping segment was dropped …
    assert wer(SPEECH_TEXT, result.text) <= 0.2  # … the speech kept
    stored = local_store.get("dave", result.transcript_id)
    assert stored.details["dropped_segments"] == 1 and LOOP.strip() not in result.text


def test_a_text_only_endpoint_gets_short_pieces_and_aligned_times(
    asr_server: ASRServer, local_store: ProfileStore, long_speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _endpoint(monkeypatch, asr_server, response_format="json", max_piece_s=10)
    source = local_store.import_file("dave", long_speech)
    result: SrtResult = run_flow(generate_srt, "dave", source.id, PROVIDER).result()
    assert all(u.fields["response_format"] == ["json"] for u in asr_server.uploads)
    assert "timestamp_granularities[]" not in asr_server.uploads[0].fields
    assert result.asr is not None and result.asr.pieces >= 4
    assert result.asr.word_times == "aligned"  # text only: every word timed by the local model
    assert rule_violations(result.content) == []
    assert wer(" ".join([SPEECH_TEXT] * 4), _text(result.content)) <= 0.3


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 minutes of espeak-ng speech (the known text, 2.5 s of silence after each time)."""
    directory = tmp_path_factory.mktemp("ten")
    speech = make_speech(directory)
    out = directory / "ten.flac"
    ffmpeg("-stream_loop", "-1", "-i", str(speech), "-af", "apad=pad_dur=0", "-t", "600",
           "-ar", "16000", "-ac", "1", str(out))  # fmt: skip
    return out


def test_a_long_file_gets_through_a_slow_one_at_a_time_server_paced_not_livelocked(
    asr_server: ASRServer, local_store: ProfileStore, ten_minutes: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A server at 40x realtime that works on one request at a time, with `timeout_s` 7: half of
    the file (300 s) would need 7.5 s on its own, more behind others in its queue. Once, the
    server slows to half realtime (busy): that piece times out, is cut in two, and no piece is
    ever sent again whole; the server drops an abandoned request as soon as the client leaves."""
    asr_server.realtime_x, asr_server.one_at_a_time = 40.0, True
    # The 7th request: after the first answers measured the speed (the first pieces' timeouts
    # are generous: nothing is known yet, so they allow for the whole queue at timeout_s each).
    asr_server.slow_after, asr_server.slow_times, asr_server.slow_x = 6, 1, 0.5
    asr_server.set_mode("echo")
    _endpoint(monkeypatch, asr_server, timeout_s=7)
    source = local_store.import_file("dave", ten_minutes)
    state = run_flow(transcribe, "dave", source.id, PROVIDER.transcribe_request())
    assert state.is_completed(), state.message
    result: TranscribeResult = state.result()
    uploads = asr_server.uploads
    digests = [u.digest for u in uploads]
    assert len(set(digests)) == len(digests)  # no piece sent twice whole
    # The slowed piece times out; a piece queued behind it may too (its timeout allowed for the
    # queue at the speed measured before the slow spell). Each was dropped by the server when
    # the client left, not worked on to its end, and its audio was sent again as two halves.
    abandoned = [u for u in uploads if u.outcome == "abandoned"]
    assert any(u.slow for u in abandoned) and len(abandoned) <= 4  # what was in flight then
    assert all(u.held_s < u.duration / asr_server.slow_x for u in abandoned)
    answered = [u for u in uploads if u.outcome == "echo"]
    assert sum(u.duration for u in answered) >= 599
    assert result.asr is not None and result.asr.audio_sent_s == pytest.approx(600, abs=1)
    assert max(u.held_s for u in answered) < 7  # every piece sized to fit its timeout
    assert not any(u.slow for u in answered)
    assert max(u.duration for u in answered) <= 90  # ~ the first pieces' 60 s and a cut
    assert asr_server.max_in_flight <= 4
    logs = prefect_api.everything_about([run_id_of(state)], tasks=4)
    assert "cut in two" in logs


GERMAN = ("Guten Morgen. Heute sprechen wir über das Wetter in den Bergen. Am Nachmittag wird es "
          "regnen, und am Abend kommt der Wind aus dem Westen.")  # fmt: skip


def test_a_language_the_endpoint_got_wrong_fails_naming_both(
    asr_server: ASRServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """German speech that the endpoint calls Latin (`la`, not a language mediaflows knows): the
    bundled model, listening to the middle of the file, hears German; the run fails with an
    input error naming both, and no subtitles in the wrong language are stored."""
    # A timeout no busy machine reaches: a piece that timed out is cut in two (not the subject).
    _endpoint(monkeypatch, asr_server, timeout_s=120)
    wav = tmp_path / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "140", "-w", str(wav), GERMAN], check=True)
    asr_server.set_mode("language", language_name="la")
    source = local_store.import_file("dave", wav)
    state = run_flow(generate_srt, "dave", source.id, GenerateSrtRequest(provider="loop"))
    assert state.is_failed()
    with pytest.raises(InputError, match=r"heard 'la'.*hears German \(de\)"):
        state.result()
    assert [f.id for f in local_store.list_files("dave")] == [source.id]  # nothing stored
    assert len(asr_server.uploads) == 1  # an input error: not retried


def test_an_unmeasured_language_is_said_to_be_doubtful_never_certain(
    asr_server: ASRServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """German speech the endpoint calls French, and a check never sure enough to fail the run:
    French is kept, but no probability is invented for it (it was 1.0) and the result says the
    language is in doubt. A requested language is not measured either, and not in doubt."""
    _endpoint(monkeypatch, asr_server, timeout_s=120)  # no piece cut on a busy machine
    wav = tmp_path / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "140", "-w", str(wav), GERMAN], check=True)
    monkeypatch.setenv("MEDIAFLOWS_ASR__CHECK_LANGUAGE_CONFIDENCE", "1.0")
    get_settings.cache_clear()
    asr_server.set_mode("language", language_name="french")
    source = local_store.import_file("dave", wav)
    heard: SrtResult = run_flow(generate_srt, "dave", source.id,
                                GenerateSrtRequest(provider="loop")).result()  # fmt: skip
    assert heard.language == "fr" and "not sure enough" in (heard.asr.language_check or "")
    assert heard.language_probability is None and heard.language_doubtful
    stored = local_store.get("dave", heard.file_id).details
    assert stored["language_probability"] is None and stored["language_doubtful"] is True
    asr_server.set_mode("ok")
    request = GenerateSrtRequest(provider="loop", language="de")
    asked: SrtResult = run_flow(generate_srt, "dave", source.id, request).result()
    assert asked.language == "de"
    assert asked.language_probability is None and not asked.language_doubtful


def test_the_endpoints_language_checked_by_the_bundled_model_is_reported(
    asr_server: ASRServer, local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    source = local_store.import_file("dave", speech_media["speech.mp3"])
    result: SrtResult = run_flow(generate_srt, "dave", source.id,
                             GenerateSrtRequest(provider="loop")).result()  # fmt: skip
    assert result.language == "en"
    assert result.asr is not None and result.asr.language_check is not None
    assert result.asr.language_check.startswith("en ") and "agrees" in result.asr.language_check
