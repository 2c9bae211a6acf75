"""Prefect tasks over an OpenAI-compatible LLM. Requests carry the ``llm`` tag: a Prefect
concurrency limit named ``llm`` bounds how many run at once across every worker."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from mediaflows import llm, translation
from mediaflows.llm import ChunkFix, SrtChunk
from mediaflows.settings import get_settings
from tasks._retry import RETRYING

LLM_TAG = "llm"


def _chunk_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Same cue text + context + model + endpoint + instructions → same answer, in any run: a
    # re-run after a failure asks the model only for the chunks that did not finish. A chunk
    # that got no valid answer fails (ChunkRefusedError) and so is never cached.
    settings = get_settings().llm
    return llm.chunk_cache_key(
        parameters["chunk"],
        parameters["model"],
        parameters["sys_msg"],
        parameters["glossary"],
        f"{settings.base_url}|{settings.response_format}|{settings.temperature}|"
        f"{settings.min_similarity}",
    )


@task(
    name="fix_chunk",
    tags=[LLM_TAG],
    cache_key_fn=_chunk_key,
    persist_result=True,
    **RETRYING,
)
def fix_chunk(
    chunk: SrtChunk, model: str, sys_msg: str | None, glossary: tuple[str, ...], limit: int
) -> ChunkFix:
    """Repair one chunk of cues (their text only), validated. No valid answer: fails with
    ChunkRefusedError carrying the original text (not cached, not retried). 429/5xx/timeouts
    are retried inside (honouring Retry-After), then here with backoff; a refused request
    (400/401/404, a refused connection) fails at once. ``limit``: the `llm` limit, within which
    the requests in flight follow the endpoint's real parallelism."""
    return llm.fix_chunk(chunk, model, sys_msg, glossary, limit=limit)


def _translation_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Per chunk and language: a run with one more language asks only for that language.
    settings = get_settings().llm
    return translation.chunk_cache_key(
        parameters["chunk"],
        parameters["model"],
        parameters["target"],
        parameters["source"],
        parameters["sys_msg"],
        parameters["glossary"],
        f"{settings.base_url}|{settings.response_format}|{settings.temperature}",
    )


@task(
    name="translate_chunk",
    tags=[LLM_TAG],
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
) -> ChunkFix:
    """Translate one chunk of cues (their text only) into ``target``, validated; refusals,
    faults and retries as :func:`fix_chunk`."""
    return translation.translate_chunk(chunk, model, target, source, sys_msg, glossary, limit=limit)
