"""The ``convert`` flow: a profile video → a web-ready MP4 stored in the same profile."""

from __future__ import annotations

from flows._operation import Job, Output, operation_flow
from mediaflows.models import ConvertRequest
from mediaflows.operations import CONVERT
from mediaflows.stages import Stage
from tasks.media import convert_media
from tasks.store import store_output


@operation_flow(CONVERT)
def convert(job: Job[ConvertRequest]) -> Output:
    """Convert a profile video to a web-ready MP4 and store it in the profile.

    Remuxes when the codecs fit MP4 (H.264/HEVC + AAC/MP3), else transcodes to H.264/AAC; the
    moov atom always comes first. If an earlier run already stored this exact output (same
    content, options and ffmpeg), nothing runs again.
    """
    local, info = job.fetch_and_probe()
    job.progress.stage(Stage.PROCESSING, "converting 0%")
    converted = convert_media(local, info, job.request, job.source, job.workspace, job.progress)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing")
    stored = store_output(
        job.profile,
        job.output_id,
        converted.path,
        name=f"{job.stem}.mp4",
        source=job.source,
        operation=CONVERT.name,
        options=job.request.model_dump(mode="json"),
        tools={"ffmpeg": converted.tool},
        details={
            "mode": converted.mode,
            "reason": converted.reason,
            "duration": converted.duration,
        },
    )
    return Output(stored, None, f"{converted.mode}, {converted.duration:.1f} s")
