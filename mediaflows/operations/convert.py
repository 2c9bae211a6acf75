"""``convert``: a profile video → a web-ready MP4 (remuxed when the codecs fit, else H.264/AAC;
the moov atom first), stored in the same profile."""

from __future__ import annotations

from mediaflows.ids import output_file_id
from mediaflows.media.convert import ConvertedMedia
from mediaflows.media.tools import ffmpeg_version
from mediaflows.models import ConvertDetails, ConvertRequest, ConvertResult, ProfileFile
from mediaflows.operations.spec import (
    LOCAL_WORK,
    FileOutput,
    OperationSpec,
    OutputIds,
    result_builder,
    stem_of,
)
from mediaflows.settings import Settings


def output_ids(source: ProfileFile, request: ConvertRequest, settings: Settings) -> OutputIds:
    """The MP4's id: the input's content, the request and the ffmpeg version."""
    tool = ffmpeg_version(settings.media.ffmpeg_binary)
    return OutputIds(
        main=output_file_id(source.sha256, "convert", request.model_dump(mode="json"), tool)
    )


CONVERT: OperationSpec[ConvertRequest, ConvertResult, ConvertDetails, OutputIds] = OperationSpec(
    "convert", "video → web-ready MP4", ConvertRequest, ConvertResult, ConvertDetails,
    input_kinds=("video",), stages=LOCAL_WORK, output_ids=output_ids,
    build_result=result_builder(ConvertResult, "file_id"),
)  # fmt: skip


def mp4(
    source: ProfileFile, request: ConvertRequest, ids: OutputIds, converted: ConvertedMedia
) -> FileOutput:
    """The converted MP4 as it is stored: ``<name>.mp4``, with how it was made."""
    details = ConvertDetails(
        mode=converted.mode, reason=converted.reason, duration=converted.duration
    )
    options, tools = request.model_dump(mode="json"), {"ffmpeg": converted.tool}
    name = f"{stem_of(source)}.mp4"
    return FileOutput(ids.main, name, CONVERT.name, options, tools, details, converted.path)


def summary(converted: ConvertedMedia) -> str:
    """The run's last word in the UI."""
    return f"{converted.mode}, {converted.duration:.1f} s"
