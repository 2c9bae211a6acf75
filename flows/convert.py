"""The ``convert`` flow: a profile video → a web-ready MP4 stored in the same profile."""

from __future__ import annotations

from flows._operation import Job, Output, operation_flow
from mediaflows.models import ConvertRequest
from mediaflows.operations import convert as procedure
from mediaflows.operations.convert import CONVERT
from mediaflows.operations.spec import OutputIds
from mediaflows.stages import Stage
from tasks.media import convert_media


@operation_flow(CONVERT)
def convert(job: Job[ConvertRequest, OutputIds]) -> Output:
    """Convert a profile video to a web-ready MP4 and store it in the profile.

    Remuxes when the codecs fit MP4 (H.264/HEVC + AAC/MP3), else transcodes to H.264/AAC; the
    moov atom always comes first. If an earlier run already stored this exact output (same
    content, options and ffmpeg), nothing runs again.
    """
    local, info = job.fetch_and_probe()
    job.progress.stage(Stage.PROCESSING, "converting 0%")
    converted = convert_media(local, info, job.request, job.source, job.workspace, job.progress)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing")
    stored = job.store(procedure.mp4(job.source, job.request, job.ids, converted))
    return Output(stored, None, procedure.summary(converted))
