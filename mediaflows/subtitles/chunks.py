"""Subtitle text through an LLM, chunk by chunk: what repair and translation share.

The model never sees a timecode. It gets cue numbers and text as JSON *data*, in chunks with a
little read-only context, and must answer with the same numbers in structured JSON. An answer
that drops, adds, renames or empties a cue is refused and the chunk asked again (a few times,
each time shown its refused answer and why, at a slightly higher temperature: an identical
request at temperature 0 gets the identical answer); then the chunk keeps its original text.
Each cue of a valid answer is judged by the operation (:data:`Acceptor`). Times are copied from
the source file, so the output can never drift.

Each request's output is bounded by a ``max_tokens`` derived from its input. The endpoint itself
(output mode, requests in flight, faults, stopping) is :mod:`mediaflows.endpoints`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mediaflows import endpoints
from mediaflows.errors import ChunkRefusedError, InvalidAnswerError
from mediaflows.settings import LLMSettings, Settings, get_settings
from mediaflows.subtitles.records import TimedCue

CUES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cues": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
                "required": ["id", "text"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["cues"],
    "additionalProperties": False,
}


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CueText(_Record):
    """What the model sees of a cue: its number and its text, never its times."""

    id: int
    text: str


class SrtChunk(_Record):
    """Cues sent to the model in one request, with read-only neighbours for context."""

    index: int = Field(ge=0)
    cues: tuple[CueText, ...]
    before: tuple[CueText, ...] = ()
    after: tuple[CueText, ...] = ()
    seconds: tuple[float, ...] = Field(
        default=(),
        description="How long each cue is shown (aligned with ``cues``; empty: not known): a "
        "translation's reading-speed budget. Never sent to the model.",
    )


class ChunkFix(_Record):
    """The model's repair of one chunk, validated, or the original text when it failed."""

    index: int
    texts: tuple[CueText, ...] = Field(description="The text to keep for each cue of the chunk.")
    fallback: bool = Field(description="True: no valid answer, the original text was kept.")
    attempts: int
    rejected: tuple[int, ...] = Field(
        default=(), description="Cues whose answer was refused (a rewrite, not a repair)."
    )
    problems: tuple[str, ...] = Field(default=(), description="Why answers were refused.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    response_format: str = Field(default="", description="The output mode the server took.")
    first: tuple[CueText, ...] = Field(
        default=(),
        description="A translation's first accepted text of each cue then asked to condense.",
    )
    condense_attempts: int = Field(default=0, description="Condense requests sent (0 or 1).")


#: A judged answer: the text to keep per cue, the cues whose answer was refused, and why.
Accepted = tuple[tuple[CueText, ...], tuple[int, ...], tuple[str, ...]]


def llm_options(selector: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """The model a request picks, resolved, and every setting that changes the LLM's answer (the
    endpoint, its output mode, the chunking, the sampling, the acceptance threshold): they enter
    the output ids of the operations an LLM does. The API key never does."""
    llm = (settings or get_settings()).llm
    endpoint = llm.model_dump(
        mode="json",
        include={"base_url", "response_format", "chunk_cues", "context_cues", "temperature",
                 "min_similarity", "chunk_attempts"},
    )  # fmt: skip
    return {"model": llm.resolve_model(selector), "endpoint": endpoint}


def plan_chunks(cues: Sequence[TimedCue], size: int, context: int) -> list[SrtChunk]:
    """Split the cues that have text into chunks of ``size``, each with up to ``context``
    neighbours on either side. Empty cues are never sent: they stay as they are."""
    spoken = [c for c in cues if c.text.strip()]
    texts = [CueText(id=c.id, text=c.text) for c in spoken]
    seconds = [max(c.end_ms - c.start_ms, 0) / 1000 for c in spoken]
    chunks = []
    for index, start in enumerate(range(0, len(texts), size)):
        end = start + size
        chunks.append(
            SrtChunk(
                index=index,
                cues=tuple(texts[start:end]),
                before=tuple(texts[max(start - context, 0) : start]),
                after=tuple(texts[end : end + context]),
                seconds=tuple(seconds[start:end]),
            )
        )
    return chunks


def chunk_messages(
    system: str,
    chunk: SrtChunk,
    sys_msg: str | None = None,
    per_cue: Mapping[int, Mapping[str, Any]] | None = None,
    **extra: Any,
) -> list[dict[str, str]]:
    """System and user messages for one chunk: the operation's ``system`` prompt (with the
    operator's ``sys_msg`` below it) and the cues as JSON data only (each with its ``per_cue``
    fields: a translation's character budget), their read-only context and ``extra`` fields (a
    glossary, the languages)."""
    if sys_msg:
        system += (
            "\n\nAdditional instructions from the operator (they cannot change the answer "
            f"format or the rules above):\n{sys_msg}"
        )
    data: dict[str, Any] = {k: v for k, v in extra.items() if k != "glossary"}
    data["cues"] = [{**c.model_dump(), **(per_cue or {}).get(c.id, {})} for c in chunk.cues]
    if chunk.before:
        data["context_before"] = [c.model_dump() for c in chunk.before]
    if chunk.after:
        data["context_after"] = [c.model_dump() for c in chunk.after]
    if extra.get("glossary"):
        data["glossary"] = extra["glossary"]
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps(data, ensure_ascii=False)},
    ]


def chunk_cache_key(
    chunk: SrtChunk,
    model: str,
    sys_msg: str | None,
    glossary: Sequence[str],
    base_url: str,
    prompt: str,
    **task: Any,
) -> str:
    """What a chunk's answer depends on: its text and context, the model and endpoint, the
    instructions, the glossary, the prompt version and the ``task`` (a translation's languages
    and character budgets); never the times themselves, never the key. ``r3``: the cached
    record's version (results are pickled by reference; :class:`ChunkFix` moved to
    ``subtitles.chunks`` in r2, and holds a translation's condensation since r3)."""
    payload = json.dumps(
        {
            "cues": [c.model_dump() for c in chunk.cues],
            "before": [c.model_dump() for c in chunk.before],
            "after": [c.model_dump() for c in chunk.after],
            "model": model,
            "base_url": base_url,
            "sys_msg": sys_msg,
            "glossary": list(glossary),
            "prompt": prompt,
            **({"task": task} if task else {}),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return f"{prompt}-r3-{hashlib.sha256(payload.encode()).hexdigest()}"


# ---- validating answers ----------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_answer(content: str | None, chunk: SrtChunk) -> dict[int, str]:
    """The corrected text per cue id; :class:`InvalidAnswerError` unless the answer names
    exactly the chunk's ids, once each, each with non-empty text."""
    if not content:
        raise InvalidAnswerError("empty answer")
    fenced = _FENCE.match(content)
    try:
        data = json.loads(fenced.group(1) if fenced else content)
    except json.JSONDecodeError as exc:
        raise InvalidAnswerError(f"not JSON ({exc.msg})") from None
    items = data.get("cues") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InvalidAnswerError('no "cues" list')
    texts: dict[int, str] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InvalidAnswerError("a cue without text")
        cue_id = item.get("id")
        if isinstance(cue_id, str) and cue_id.strip().isdigit():
            cue_id = int(cue_id)
        if not isinstance(cue_id, int) or isinstance(cue_id, bool):
            raise InvalidAnswerError(f"a cue with id {cue_id!r}")
        if cue_id in texts:
            raise InvalidAnswerError(f"cue {cue_id} twice")
        texts[cue_id] = item["text"]
    expected = [c.id for c in chunk.cues]
    if len(texts) != len(expected):
        raise InvalidAnswerError(f"{len(texts)} cues for {len(expected)}")
    if set(texts) != set(expected):
        raise InvalidAnswerError(f"other cue ids: {sorted(set(texts) ^ set(expected))[:5]}")
    empty = [i for i in expected if not texts[i].strip()]
    if empty:
        raise InvalidAnswerError(f"empty cues: {empty[:5]}")
    return texts


#: Markup a cue may carry: HTML-like tags (<i>, </font>) and ASS override blocks ({\an8}).
TAG = re.compile(r"<[^<>]{1,60}>|\{\\[^{}]{0,60}\}")
#: Characters that only end up in a cue as debris of the JSON or markdown around it.
DEBRIS = ("{", "}", "[", "]", "`", '"id"', '"text"')


def damage(original: str, answer: str) -> str | None:
    """Why ``answer`` is a damaged version of a cue's ``original`` text, whatever the task (None:
    it is not): markup tags changed, added, dropped or reordered; JSON or markdown debris."""
    if TAG.findall(answer) != TAG.findall(original):
        return "markup changed"
    for debris in DEBRIS:
        if answer.count(debris) > original.count(debris):
            return f"debris {debris!r} in the answer"
    return None


def max_tokens_for(chunk: SrtChunk) -> int:
    """A bound on the answer's length: the chunk's own text as JSON, twice over for scripts that
    take more tokens a character, plus room for the JSON around it. A model that rambles (a small
    model repeating itself for thousands of tokens) is cut there, not after minutes."""
    text = json.dumps([c.model_dump() for c in chunk.cues], ensure_ascii=False)
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return 256 + ascii_chars // 2 + 2 * (len(text) - ascii_chars)


def _follow_up(
    messages: list[dict[str, str]], answer: str, problem: str, chunk: SrtChunk
) -> list[dict[str, str]]:
    """The conversation for a retry: the refused answer and why, so that the request differs
    from the last one (an identical request at temperature 0 gets the identical answer)."""
    ids = [c.id for c in chunk.cues]
    return [
        *messages,
        {"role": "assistant", "content": answer[:4000]},
        {
            "role": "user",
            "content": f"That answer was refused: {problem}. Answer again with JSON only, "
            f"one entry for each of the ids {ids}, each with its text.",
        },
    ]


#: How a chunk's validated answer is judged cue by cue: the text to keep per cue, the cues
#: whose answer was refused, and why (:func:`accept_answer` for a repair). It may raise
#: :class:`InvalidAnswerError` to have the whole chunk asked again.
Acceptor = Callable[[SrtChunk, dict[int, str]], Accepted]


def ask_chunk(
    chunk: SrtChunk,
    model: str,
    messages: list[dict[str, str]],
    accept: Acceptor,
    settings: LLMSettings | None = None,
    limit: int | None = None,
    max_tokens: int | None = None,
) -> ChunkFix:
    """Send one chunk's ``messages``, and validate the answer: the same cue ids, each with
    text (:func:`parse_answer`), then ``accept`` judges each cue.

    An invalid answer is asked again, up to ``settings.chunk_attempts`` times, each time with the
    refused answer and its fault shown and the temperature raised by 0.2; then the chunk keeps
    its original text and :class:`ChunkRefusedError` (carrying that fallback) is raised, so that
    the refusal is not cached. Endpoint faults propagate (see :func:`endpoints.complete`).
    ``limit``: the most requests in flight to the endpoint (the run's ``llm`` limit), fitted by
    :class:`endpoints.Window`.
    """
    settings = settings or get_settings().llm
    first = messages
    problems: list[str] = []
    prompt_tokens = completion_tokens = 0
    bound = max_tokens or max_tokens_for(chunk)
    chars = sum(len(c.text) for c in chunk.cues)
    slots = endpoints.window(settings, model, limit or 1)
    mode = ""
    for attempt in range(1, settings.chunk_attempts + 1):
        temperature = min(settings.temperature + 0.2 * (attempt - 1), 1.0)
        in_flight = slots.started()
        started, ok = time.monotonic(), False
        try:
            answer = endpoints.complete(
                messages,
                model,
                ("subtitle_cues", CUES_SCHEMA),
                settings,
                max_tokens=bound,
                temperature=temperature,
                timeout_s=slots.timeout(settings.timeout_s, in_flight),
            )
            ok = True
        finally:
            slots.finished(in_flight, time.monotonic() - started, chars, ok)
        mode = answer.response_format
        prompt_tokens += answer.prompt_tokens
        completion_tokens += answer.completion_tokens
        try:
            if answer.finish_reason == "length":
                raise InvalidAnswerError(f"answer cut at max_tokens ({bound})")
            texts = parse_answer(answer.content, chunk)
            kept, rejected, reasons = accept(chunk, texts)
        except InvalidAnswerError as exc:
            problems.append(f"attempt {attempt}: {exc}")
            messages = _follow_up(first, answer.content, str(exc), chunk)
            continue
        problems += reasons
        return ChunkFix(index=chunk.index, texts=kept, fallback=False, attempts=attempt,
                        rejected=rejected, problems=tuple(problems), prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens, response_format=mode)  # fmt: skip
    fix = ChunkFix(index=chunk.index, texts=chunk.cues, fallback=True,
                   attempts=settings.chunk_attempts, problems=tuple(problems),
                   prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   response_format=mode)  # fmt: skip
    raise ChunkRefusedError(
        f"chunk {chunk.index} (cues {chunk.cues[0].id}–{chunk.cues[-1].id}) kept its text: "
        f"no valid answer in {settings.chunk_attempts} attempts ({'; '.join(problems)})",
        fix,
    )


# ---- putting the file back together ----------------------------------------------------------


def apply_fixes(cues: Sequence[TimedCue], fixes: Sequence[ChunkFix]) -> list[TimedCue]:
    """The source cues with their repaired text: same number, same order, same times."""
    texts = {t.id: t.text for fix in fixes for t in fix.texts}
    return [c.model_copy(update={"text": texts.get(c.id, c.text)}) for c in cues]


def remedy(response_format: str, cues_per_chunk: float) -> str:
    """What to try when most of a file's chunks got no valid answer (the run then stores
    nothing): only what the run did not already do (JSON mode, one cue a request)."""
    json_mode, one_cue = response_format == "json_object", cues_per_chunk <= 1
    tries = ["another model (MEDIAFLOWS_LLM__MODELS)"]
    tries += [] if json_mode else ["MEDIAFLOWS_LLM__RESPONSE_FORMAT=json_object"]
    tries += [] if one_cue else ["fewer cues per request (MEDIAFLOWS_LLM__CHUNK_CUES)"]
    done = [f"{response_format} output"] if response_format else []
    done += ["one cue a request"] if one_cue else []
    tried = f" (this run: {', '.join(done)})" if done else ""
    listed = tries[0] if len(tries) == 1 else f"{', '.join(tries[:-1])} or {tries[-1]}"
    return f"Try {listed}{tried}."


def request_totals(fixes: Sequence[ChunkFix]) -> dict[str, Any]:
    """What a run's report sums over its chunks: retries, the output mode, tokens, problems."""
    return {
        "problems": tuple(
            f"chunk {f.index}: {p}"
            for f in sorted(fixes, key=lambda f: f.index)
            for p in f.problems
        ),
        "retries": sum(f.attempts - 1 for f in fixes),
        "response_format": next((f.response_format for f in fixes if f.response_format), ""),
        "prompt_tokens": sum(f.prompt_tokens for f in fixes),
        "completion_tokens": sum(f.completion_tokens for f in fixes),
    }
