"""Prefect tasks over an OpenAI-compatible LLM. Requests carry the ``llm`` tag: a Prefect
concurrency limit named ``llm`` bounds how many run at once across every worker."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from mediaflows import llm
from mediaflows.llm import ChunkFix, SrtChunk
from mediaflows.settings import get_settings
from tasks._retry import RETRYING

LLM_TAG = "llm"


def _chunk_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Same cue text + context + model + endpoint + instructions → same answer, in any run: a
    # re-run after a failure asks the model only for the chunks that did not finish.
    return llm.chunk_cache_key(
        parameters["chunk"],
        parameters["model"],
        parameters["sys_msg"],
        parameters["glossary"],
        get_settings().llm.base_url,
    )


@task(
    name="fix_chunk",
    tags=[LLM_TAG],
    cache_key_fn=_chunk_key,
    persist_result=True,
    **RETRYING,
)
def fix_chunk(
    chunk: SrtChunk, model: str, sys_msg: str | None, glossary: tuple[str, ...]
) -> ChunkFix:
    """Repair one chunk of cues (their text only), validated; the original text when the model
    gives no valid answer. 429/5xx/timeouts are retried inside (honouring Retry-After), then
    here with backoff; a refused request (400/401/404) fails at once."""
    return llm.fix_chunk(chunk, model, sys_msg, glossary)
