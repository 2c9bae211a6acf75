"""The ``package`` flow: a profile video and SRT outputs of it → one MP4 with a soft subtitle
track per language (optionally one burnt in), stored in the same profile, and a preview frame
in the UI."""

from __future__ import annotations

from flows._operation import Job, Output, operation_flow
from mediaflows.models import PackageRequest
from mediaflows.operations import package as procedure
from mediaflows.operations.package import PACKAGE
from mediaflows.operations.spec import OutputIds
from mediaflows.stages import Stage
from tasks.media import package_media, render_preview
from tasks.progress import publish_preview
from tasks.subtitles import choose_subtitles


@operation_flow(PACKAGE)
def package(job: Job[PackageRequest, OutputIds]) -> Output:
    """Package a profile video with SRT outputs of it into one MP4 and store it in the profile.

    One soft `mov_text` track per SRT, in the order given: tagged with its ISO 639-2 language
    (`deu`, `fra`, `zho`), named in its language (Deutsch, Français, 简体中文), the first the
    default; the moov atom first; video and audio copied, bit for bit. With `burn_in`, that
    language is also drawn into the picture by libass (the video is re-encoded with x264;
    audio is still copied). An SRT of another file, two SRTs in one language, a `burn_in`
    language without a track or a file without video fail at once and store nothing. The run
    publishes a frame from the middle of the video with every language's cue drawn.
    """
    request = job.request
    job.progress.stage(Stage.UPLOAD_RECEIVED, "looking up subtitles")
    chosen, parsed = choose_subtitles(job.profile, job.source, request)
    local, info = job.fetch_and_probe()
    procedure.check_video(info, job.source.name)
    tracks = procedure.tracks(chosen, parsed, job.workspace, info.duration)
    middle = info.video_duration / 2
    lines = procedure.preview_lines(chosen, parsed, middle)
    preview = render_preview.submit(local, middle, lines, job.source, job.workspace)  # meanwhile
    job.progress.stage(Stage.PROCESSING, "packaging 0%")
    packaged = package_media(local, info, tracks, procedure.burn_in_track(tracks, request),
                             request, job.source, job.workspace, job.progress)  # fmt: skip
    job.progress.stage(Stage.PROCESSING_RESULT, "publishing the preview")
    publish_preview(preview.result(), job.title, [choice.language for choice in chosen])
    job.progress.stage(Stage.PROCESSING_RESULT, "storing", 0.5)
    stored = job.store(procedure.mp4(job.source, request, job.ids, chosen, packaged))
    return Output(stored, None, procedure.summary(packaged, chosen, request))
