"""Prefect tasks over an OpenAI-compatible chat endpoint. Each request is sent inside a slot of
the server's ``tag:llm`` limit (:func:`tasks.slots.hold`), which bounds how many run at once
across every worker. The tasks do not carry the ``llm`` tag: Prefect would take a second slot,
with a lease of its own that a killed process keeps for a minute."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from mediaflows.settings import get_settings
from mediaflows.subtitles import repair, translation
from mediaflows.subtitles.chunks import ChunkFix, SrtChunk
from tasks import slots
from tasks.retry import RETRYING

LLM_TAG = "llm"


def _repair_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return repair.chunk_cache_key(
        parameters["chunk"], parameters["model"], parameters["sys_msg"], parameters["glossary"],
        get_settings().llm,
    )  # fmt: skip


@task(
    name="fix_chunk",
    cache_key_fn=_repair_key,
    persist_result=True,
    **RETRYING,
)
def fix_chunk(
    chunk: SrtChunk, model: str, sys_msg: str | None, glossary: tuple[str, ...], limit: int
) -> ChunkFix:
    """Repair one chunk of cues (their text only), validated; cached by its text, context, model,
    endpoint, instructions and glossary. No valid answer: fails with ChunkRefusedError carrying
    the original text (not cached, not retried). 429/5xx/timeouts are retried inside (honouring
    Retry-After), then here with backoff; a refused request (400/401/404, a refused connection)
    fails at once. ``limit``: the `llm` limit, within which the requests in flight follow the
    endpoint's real parallelism."""
    with slots.hold(LLM_TAG, limit):
        return repair.fix_chunk(chunk, model, sys_msg, glossary, limit=limit)


def _translation_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return translation.chunk_cache_key(
        parameters["chunk"], parameters["model"], parameters["target"], parameters["source"],
        parameters["sys_msg"], parameters["glossary"], get_settings().llm,
        parameters["condense"],
    )  # fmt: skip


@task(
    name="translate_chunk",
    cache_key_fn=_translation_key,
    persist_result=True,
    task_run_name="translate_chunk-{target}-{chunk.index}",
    **RETRYING,
)
def translate_chunk(
    chunk: SrtChunk,
    model: str,
    target: str,
    source: str | None,
    sys_msg: str | None,
    glossary: tuple[str, ...],
    limit: int,
    condense: bool = True,
) -> ChunkFix:
    """Translate one chunk of cues (their text only, each with its character budget) into
    ``target``, validated, the cues over budget asked once to condense; cached per chunk and
    language. Refusals, faults and retries as :func:`fix_chunk`."""
    with slots.hold(LLM_TAG, limit):
        return translation.translate_chunk(
            chunk, model, target, source, sys_msg, glossary, limit=limit, condense=condense
        )
