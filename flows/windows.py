"""The ``transcribe_window`` flow: one window of a long file, a child run that the transcription
of the file (``transcribe``, ``generate_srt``) hands to whichever worker of its pool is free."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from mediaflows.ids import FileId, ProfileName
from mediaflows.models import TranscribeRequest
from mediaflows.speech import Heard, Span
from mediaflows.store import ProfileStore, remove_workspace, workspace_path
from tasks import prefect_adapter as adapter
from tasks.store import fetch_profile_file, local_profile_file
from tasks.whisper import transcribe_window as hear_window


def _hear(
    profile: str,
    file_id: str,
    request: TranscribeRequest,
    span: Span,
    language: str | None,
    expected_s: float | None,
) -> Heard:
    source = ProfileStore.from_settings().get(profile, file_id)
    workspace = workspace_path(str(flow_run.get_id() or f"window-{file_id}-{span.index}"))
    try:
        local = local_profile_file(source) or fetch_profile_file(source, workspace)
        return hear_window(local, source, request, span, language, expected_s)
    finally:
        remove_workspace(workspace)


@flow(name="transcribe_window", validate_parameters=True, persist_result=True)
async def transcribe_window(
    profile: ProfileName,
    file_id: FileId,
    request: TranscribeRequest,
    span: Span,
    language: str | None = None,
    expected_s: float | None = None,
) -> Heard:
    """One window (``span``) of a long file heard by the model in this worker, in a slot of the
    ``gpu`` limit: the same cached task a transcription runs in its own process, so a window
    done here is never heard again, by any run."""
    return await adapter.run_blocking(_hear, profile, file_id, request, span, language,
                                      expected_s)  # fmt: skip
