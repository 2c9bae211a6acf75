"""fix_srt end to end: real HTTP to the loopback OpenAI-compatible server, a real Prefect server,
the profile store on disk (and S3 over HTTP)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.fix_srt import fix_srt
from mediaflows import endpoints
from mediaflows.errors import InputError, LLMOutputError, LLMRejectedError, LLMUnreachableError
from mediaflows.models import FixSrtRequest, SrtResult
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests import prefect_api
from tests.conftest import LLM_TEST_KEY
from tests.llm_server import CORRECTIONS, LLMServer, correct
from tests.runs import import_bytes, run_flow, run_id_of
from tests.srt_samples import INJECTION_LINE, MESSY_CUES, long_srt, messy_srt, timecodes


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProfileStore]:
    monkeypatch.setenv("MEDIAFLOWS_STORE__URL", str(tmp_path / "store"))
    get_settings.cache_clear()
    yield ProfileStore.from_settings()
    get_settings.cache_clear()


def _texts(content: str) -> list[str]:
    return [c.text for c in read_srt(content.encode()).cues]


def _source_timecodes(data: bytes) -> list[str]:
    return timecodes(data.decode("utf-8-sig").replace("\r\n", "\n"))


def _chunk_outcomes(server: LLMServer) -> dict[int, list[str]]:
    """Outcomes of the requests for each chunk (keyed by its first cue id)."""
    seen: dict[int, list[str]] = {}
    for r in server.requests:
        seen.setdefault(r.ids[0], []).append(r.outcome)
    return seen


def test_messy_srt_is_repaired_with_times_untouched(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    data = messy_srt()
    file_id = import_bytes(local_store, tmp_path, data)
    state = run_flow(fix_srt, "dave", file_id, FixSrtRequest(glossary=("Prefect",)))
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    assert timecodes(result.content) == _source_timecodes(data)
    assert _texts(result.content) == [correct(t) for _, _, t in MESSY_CUES]
    assert "<i>I did not receive the letter.</i>" in result.content  # tags kept, typos fixed
    assert INJECTION_LINE in result.content  # data, not an instruction
    fix = result.fix
    assert fix is not None and fix.cues == 8 and fix.encoding == "utf-8-sig"
    assert fix.changed == 6 and fix.kept == 2 and fix.fallback_chunks == ()
    assert fix.prompt_tokens > 0 and fix.completion_tokens > 0
    # Stored as a new subtitle file of the profile, derived from the source.
    stored = local_store.get("dave", result.file_id)
    assert local_store.read_text(stored) == result.content and stored.source_file_id == file_id
    assert stored.operation == "fix_srt" and stored.kind == "subtitle"
    # The model saw cue numbers and text only.
    assert len(llm_server.requests) == 1
    body = llm_server.requests[0].body
    assert "-->" not in body and "00:00:0" not in body
    user = json.loads(body)["messages"][1]["content"]
    assert json.loads(user)["glossary"] == ["Prefect"]
    # The same request again: the stored result, no model call.
    again = run_flow(fix_srt, "dave", file_id, FixSrtRequest(glossary=("Prefect",))).result()
    assert again.cached and again.file_id == result.file_id and again.content == result.content
    assert len(llm_server.requests) == 1


def test_600_cues_in_concurrent_chunks_within_the_llm_limit(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    llm_server.set_mode("ok", latency_s=0.2)
    data = long_srt(600)
    file_id = import_bytes(local_store, tmp_path, data)
    state = run_flow(fix_srt, "dave", file_id)
    result: SrtResult = state.result()
    source = [c.text for c in read_srt(data).cues]
    assert timecodes(result.content) == timecodes(data.decode())
    assert _texts(result.content) == [correct(t) for t in source]
    assert result.fix is not None and result.fix.changed == 200 and result.fix.chunks == 30
    assert not any(word in result.content for word in CORRECTIONS)
    assert len(llm_server.requests) == 30
    assert 2 <= llm_server.max_in_flight <= get_settings().orchestration.llm_limit
    runs = prefect_api.task_runs(
        state.state_details.flow_run_id, expect=30, named="fix_chunk", named_count=30
    )
    llm_runs = [r for r in runs if r.task_key.startswith("fix_chunk")]
    assert len(llm_runs) == 30


def test_the_servers_llm_limit_bounds_the_requests_of_every_run(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """The server's `tag:llm` limit, not only this process's, decides: set to 1 on the server
    (as another team's runs holding the other slots would leave it), the chunks go one at a
    time though the process would send 4."""
    from prefect.client.orchestration import get_client

    llm_server.set_mode("ok", latency_s=0.3)
    file_id = import_bytes(local_store, tmp_path, long_srt(100))  # 5 chunks
    with get_client(sync_client=True) as client:
        limit = client.read_concurrency_limit_by_tag("llm").concurrency_limit
        client.create_concurrency_limit("llm", 1)  # an update of the existing limit
        try:
            state = run_flow(fix_srt, "dave", file_id)
        finally:
            client.create_concurrency_limit("llm", limit)
    assert state.is_completed(), state.message
    assert get_settings().orchestration.llm_limit >= 4
    assert len(llm_server.requests) == 5 and llm_server.max_in_flight == 1


@pytest.mark.parametrize(
    "mode,extra_requests",
    [("429", 1), ("500", 1), ("timeout", 1), ("malformed", 1), ("wrong_count", 1)],
)
def test_one_fault_is_retried_and_the_run_completes(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path, mode: str,
    extra_requests: int, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # One request in flight at a time: a hang (3 s) outlasts its timeout (2 s), as it would not
    # the timeout of a first request that allows for a burst of 4 queued before it.
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__LLM_LIMIT", "1")
    get_settings.cache_clear()
    llm_server.set_mode(mode, times=1, retry_after=1, hang_s=3)
    data = messy_srt()
    result = run_flow(fix_srt, "dave", import_bytes(local_store, tmp_path, data)).result()
    assert _texts(result.content) == [correct(t) for _, _, t in MESSY_CUES]
    assert timecodes(result.content) == _source_timecodes(data)
    assert [r.outcome for r in llm_server.requests] == [mode, "ok"]
    assert result.fix is not None and result.fix.fallback_chunks == ()
    if mode == "429":
        at = [r.at for r in llm_server.requests]
        assert at[1] - at[0] >= 0.95  # Retry-After: 1 was honoured


@pytest.mark.parametrize("mode", ["malformed", "wrong_count"])
def test_a_chunk_that_never_validates_keeps_its_text(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path, mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MEDIAFLOWS_LLM__CHUNK_CUES", "50")
    get_settings.cache_clear()
    llm_server.set_mode(mode, match="Cue 75 ")  # the second chunk, every time
    data = long_srt(150)
    state = run_flow(fix_srt, "dave", import_bytes(local_store, tmp_path, data))
    result: SrtResult = state.result()
    source = [c.text for c in read_srt(data).cues]
    got = _texts(result.content)
    assert got[50:100] == source[50:100]  # kept as it was
    assert got[:50] == [correct(t) for t in source[:50]]
    assert got[100:] == [correct(t) for t in source[100:]]
    assert timecodes(result.content) == timecodes(data.decode())
    assert result.fix is not None and result.fix.fallback_chunks == (1,)
    attempts = get_settings().llm.chunk_attempts
    assert _chunk_outcomes(llm_server)[51] == [mode] * attempts  # bounded
    artifacts = prefect_api.artifacts(state.state_details.flow_run_id)
    counts = next(a for a in artifacts if a.type == "markdown")
    assert "| fallback chunks | 1 [1] |" in counts.data


def test_an_injected_instruction_cannot_change_other_cues(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MEDIAFLOWS_LLM__CHUNK_CUES", "4")
    get_settings.cache_clear()
    llm_server.set_mode("inject")  # the model obeys the cue and answers "OK" for every cue
    data = messy_srt()
    result = run_flow(fix_srt, "dave", import_bytes(local_store, tmp_path, data)).result()
    got = _texts(result.content)
    assert len(got) == len(MESSY_CUES) and "OK" not in got
    assert timecodes(result.content) == _source_timecodes(data)
    assert got[:4] == [t for _, _, t in MESSY_CUES[:4]]  # the poisoned chunk: all kept
    assert got[4:] == [correct(t) for _, _, t in MESSY_CUES[4:]]  # the other chunk: repaired
    assert result.fix is not None and result.fix.rejected_cues == (1, 2, 3, 4)
    assert [r.outcome for r in llm_server.requests].count("inject") == 1


@pytest.mark.parametrize("mode", ["400", "401", "404"])
def test_a_refused_request_fails_at_once(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path, mode: str
) -> None:
    llm_server.set_mode(mode)
    file_id = import_bytes(local_store, tmp_path, messy_srt())
    state = run_flow(fix_srt, "dave", file_id)
    with pytest.raises(LLMRejectedError):
        state.result()
    # No retry (a 400 naming json_schema is asked once more, in JSON mode, and refused again).
    assert len(llm_server.requests) == (2 if mode == "400" else 1)
    failed = [r for r in prefect_api.task_runs(state.state_details.flow_run_id, 2, failed=1)
              if r.state.is_failed()]  # fmt: skip
    assert len(failed) == 1 and failed[0].run_count == 1
    assert [f.id for f in local_store.list_files("dave")] == [file_id]


def test_a_rerun_after_a_failure_asks_only_for_the_failed_chunk(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """The first run stops sending at the refusal (the circuit breaker); the chunks answered
    before it are cached, so the re-run asks only for the others."""
    llm_server.set_mode("401", match="Cue 45 ")  # the third chunk of 20 is refused
    data = long_srt(100)
    file_id = import_bytes(local_store, tmp_path, data)
    first = run_flow(fix_srt, "dave", file_id)
    assert first.is_failed()
    answered = {i for i, outcomes in _chunk_outcomes(llm_server).items() if "ok" in outcomes}
    assert 41 not in answered and answered <= {1, 21, 61, 81}
    llm_server.reset()
    endpoints.forget_endpoints()  # the breaker stays open 30 s in this process otherwise
    second = run_flow(fix_srt, "dave", file_id)
    result: SrtResult = second.result()
    asked = sorted(r.ids[0] for r in llm_server.requests)
    assert asked == sorted({1, 21, 41, 61, 81} - answered)
    assert _texts(result.content) == [correct(c.text) for c in read_srt(data).cues]
    runs = prefect_api.task_runs(
        second.state_details.flow_run_id, expect=5, named="fix_chunk", named_count=5
    )
    states = sorted(str(r.state.name) for r in runs if r.task_key.startswith("fix_chunk"))
    assert states == ["Cached"] * len(answered) + ["Completed"] * (5 - len(answered))


def test_unknown_model_and_non_srt_are_input_errors(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, messy_srt())
    with pytest.raises(InputError, match="not configured"):
        run_flow(fix_srt, "dave", file_id, FixSrtRequest(model="gpt-17")).result()
    other = get_settings().llm.models[1]
    result = run_flow(fix_srt, "dave", file_id, FixSrtRequest(model=other)).result()
    assert result.fix is not None and result.fix.model == other
    assert llm_server.requests[-1].model == other
    not_srt = import_bytes(local_store, tmp_path, b"\x00\x01garbage" * 100, name="x.srt")
    with pytest.raises(InputError, match="binary data, not a subtitle file"):
        run_flow(fix_srt, "dave", not_srt).result()


def test_diff_artifact_and_progress(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    state = run_flow(fix_srt, "dave", import_bytes(local_store, tmp_path, messy_srt()))
    artifacts = prefect_api.artifacts(state.state_details.flow_run_id)
    table = next(a for a in artifacts if a.type == "table")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert len(rows) == 6
    first = next(r for r in rows if r["cue"] == 1)
    assert first["before"] == "<i>I did not recieve teh letter.</i>"
    assert first["after"] == "<i>I did not receive the letter.</i>"
    assert "6 changed, 2 kept of 8 cues" in table.description
    progress = next(a for a in artifacts if a.type == "progress")
    assert progress.data == 100.0 and "6 of 8 cues changed" in progress.description


def test_the_api_key_is_nowhere_on_the_prefect_server(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, messy_srt())
    ok = run_flow(fix_srt, "dave", file_id)
    llm_server.set_mode("401")  # the server quotes the key in its error
    failed = run_flow(fix_srt, "dave", file_id, FixSrtRequest(sys_msg="Be brief."))
    assert ok.is_completed() and failed.is_failed()
    assert llm_server.requests[-1].authorization.endswith(LLM_TEST_KEY)  # it was sent
    text = prefect_api.everything_about([run_id_of(ok), run_id_of(failed)], tasks=2)
    assert "API key was refused" in text  # the failure is recorded…
    assert LLM_TEST_KEY not in text and LLM_TEST_KEY[-12:] not in text  # …without the key


def test_on_s3_too(llm_server: LLMServer, store: ProfileStore, tmp_path: Path) -> None:
    if not store.url.startswith("s3://"):
        pytest.skip("the local store is covered above")
    data = messy_srt()
    result = run_flow(fix_srt, "erin", _import_as(store, tmp_path, data)).result()
    assert result.media_url.startswith("http://127.0.0.1")
    assert store.read_text(store.get("erin", result.file_id)) == result.content
    assert timecodes(result.content) == _source_timecodes(data)


def _import_as(store: ProfileStore, tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "talk.srt"
    path.write_bytes(data)
    return store.import_file("erin", path).id


# ---- against the kind of server a local model runs on (issue: the LLM layer vs real models) ----


def test_a_single_slot_server_is_not_flooded_into_timeouts(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """llama.cpp with one slot: requests queue on the server, and their time in its queue counts
    against the client's timeout. With 4 sent at once, the 4th waited 3 × 0.4 s, past the 1 s
    timeout, was abandoned and sent again while the server still computed it (a livelock).
    Here 3 × 0.6 s against 1.5 s: the same livelock without queue-aware timeouts, with more room
    for a busy machine (at 0.4 s against 1 s a full-suite run once sent 11 requests, not 10)."""
    monkeypatch.setenv("MEDIAFLOWS_LLM__TIMEOUT_S", "1.5")
    get_settings.cache_clear()
    llm_server.set_mode("ok", latency_s=0.6, serial=True)
    data = long_srt(200)  # 10 chunks of 20
    state = run_flow(fix_srt, "dave", import_bytes(local_store, tmp_path, data))
    result: SrtResult = state.result()
    assert _texts(result.content) == [correct(c.text) for c in read_srt(data).cues]
    assert len(llm_server.requests) == 10 and llm_server.abandoned == 0  # nothing sent twice
    assert result.fix is not None and result.fix.retries == 0


def test_a_wrong_port_fails_the_run_in_seconds(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.net import free_port

    monkeypatch.setenv("MEDIAFLOWS_LLM__BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    get_settings.cache_clear()
    file_id = import_bytes(local_store, tmp_path, long_srt(200))
    started = time.monotonic()
    state = run_flow(fix_srt, "dave", file_id)
    assert time.monotonic() - started < 15
    with pytest.raises(LLMUnreachableError, match="connection refused"):
        state.result()
    runs = prefect_api.task_runs(state.state_details.flow_run_id, expect=3, failed=1)
    chunks = [r for r in runs if r.task_key.startswith("fix_chunk")]
    limit = get_settings().orchestration.llm_limit  # those in flight at the refusal, no more
    assert len(chunks) <= limit < 10 and all(r.run_count == 1 for r in chunks)
    assert [f.id for f in local_store.list_files("dave")] == [file_id]


def test_a_run_where_no_answer_validates_fails_and_says_why(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    llm_server.set_mode("wrong_count")  # every chunk, every attempt
    file_id = import_bytes(local_store, tmp_path, long_srt(60))
    state = run_flow(fix_srt, "dave", file_id)
    with pytest.raises(LLMOutputError, match="3 of 3 chunks got no valid answer") as info:
        state.result()
    assert "19 cues for 20" in str(info.value) and "MEDIAFLOWS_LLM__" in str(info.value)
    assert [f.id for f in local_store.list_files("dave")] == [file_id]  # nothing stored
    artifacts = prefect_api.artifacts(state.state_details.flow_run_id)
    counts = next(a for a in artifacts if a.type == "markdown")
    assert "19 cues for 20" in counts.data  # each refusal, with its reason, in the UI
    # Refused chunks are not cached: once the model behaves, the same run succeeds.
    llm_server.reset()
    again = run_flow(fix_srt, "dave", file_id)
    assert again.is_completed() and len(llm_server.requests) == 3


def test_bom_and_crlf_of_the_source_are_kept(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    data = b"\xef\xbb\xbf" + long_srt(30).replace(b"\n", b"\r\n")
    result: SrtResult = run_flow(
        fix_srt, "dave", import_bytes(local_store, tmp_path, data)
    ).result()
    stored = local_store.read_bytes(local_store.get("dave", result.file_id))
    assert stored.startswith(b"\xef\xbb\xbf1\r\n") and b"\n" not in stored.replace(b"\r\n", b"")
    assert timecodes(result.content.lstrip("\ufeff").replace("\r\n", "\n")) == timecodes(
        data.decode("utf-8-sig").replace("\r\n", "\n")
    )


def test_a_killed_repair_of_1500_cues_goes_on_from_the_chunks_done(
    llm_server: LLMServer, session_env: dict[str, str], tmp_path: Path
) -> None:
    """kill -9 of `mediaflows run fix-srt` on a film's 1,500 cues (75 chunks) once 24 are
    answered: the run again asks only for the chunks not done (those answered but not yet
    recorded when the kill came are asked again: the `llm` limit's 4 in flight, and any whose
    answer had come but whose result was still being written)."""
    import os
    import signal
    import subprocess

    from tests.conftest import without_prefect_auth
    from tests.runs import MEDIAFLOWS, cli, wait_for

    env = {**os.environ, **session_env, "MEDIAFLOWS_STORE__URL": str(tmp_path / "store")}
    data = long_srt(1500)
    (tmp_path / "film.srt").write_bytes(data)
    file_id = json.loads(cli(env, "import", "--profile", "fay", str(tmp_path / "film.srt")).stdout)[
        "file_id"
    ]
    llm_server.set_mode("ok", latency_s=0.2)
    args = [MEDIAFLOWS, "run", "fix-srt", "--profile", "fay", file_id, "--json"]
    killed = subprocess.Popen(args, env=without_prefect_auth(env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip

    def answered() -> set[int]:
        return {i for i, outcomes in _chunk_outcomes(llm_server).items() if "ok" in outcomes}

    # 24 chunks answered (a request is recorded when it comes, its outcome when it is answered;
    # an answer the kill keeps from its client is recorded as abandoned: at most the 4 in flight)
    wait_for(lambda: len(answered()) >= 24 or killed.poll() is not None, 240, "24 chunks")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    done = answered()
    assert 20 <= len(done) < 75
    llm_server.reset()
    again = cli(env, *args[1:])
    assert again.returncode == 0, again.stderr[-3000:]
    asked = {r.ids[0] for r in llm_server.requests}
    every = {20 * k + 1 for k in range(75)}
    assert every - done <= asked and len(asked & done) <= 2 * 4, sorted(asked & done)
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert _texts(result["content"]) == [correct(c.text) for c in read_srt(data).cues]


def test_a_webvtt_comes_back_as_webvtt_with_its_cue_settings_and_in_the_formats_asked(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """A real Netflix WebVTT (cue settings on every cue, italics): repaired, it is stored as
    SRT and as WebVTT again, each cue's settings, times and italics as in the source; ASS on
    request. The same request again answers from the store, with the files' URLs."""
    from mediaflows.subtitles import read_subtitles
    from tests.conftest import DATA

    source = DATA / "subtitles" / "es_netflix_chicas_del_cable.vtt"
    file_id = import_bytes(local_store, tmp_path, source.read_bytes(), name="chicas.vtt")
    request = FixSrtRequest(formats=("ass",))
    result: SrtResult = run_flow(fix_srt, "dave", file_id, request).result()
    assert list(result.files) == ["vtt", "ass"] and set(result.urls) == {"vtt", "ass"}
    theirs = read_subtitles(source.read_bytes(), source.name).cues
    vtt = local_store.get("dave", result.files["vtt"])
    assert vtt.name == "chicas.fixed.vtt"
    ours = read_subtitles(local_store.read_bytes(vtt), vtt.name)
    assert ours.format == "vtt" and len(ours.cues) == len(theirs) == 865
    assert [(c.start_ms, c.end_ms, c.settings, c.position) for c in ours.cues] == [
        (c.start_ms, c.end_ms, c.settings, c.position) for c in theirs
    ]
    assert sum(c.settings != "" for c in ours.cues) > 800
    assert [("<i>" in c.text) for c in ours.cues] == [("<i>" in c.text) for c in theirs]
    assert timecodes(result.content) == [
        t.replace(".", ",") for t in timecodes(source.read_text(encoding="utf-8"))
    ]
    ass = local_store.get("dave", result.files["ass"])
    assert read_subtitles(local_store.read_bytes(ass), ass.name).format == "ass"
    requests = len(llm_server.requests)
    again: SrtResult = run_flow(fix_srt, "dave", file_id, request).result()
    assert again.cached and again.files == result.files and set(again.urls) == {"vtt", "ass"}
    assert len(llm_server.requests) == requests
