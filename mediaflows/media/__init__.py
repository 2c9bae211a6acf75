"""Media files through ffmpeg and ffprobe: what a file holds, web-ready MP4s, and its audio as
samples for speech recognition. Every call runs through one guarded runner (:mod:`.tools`:
argument lists, timeouts, cancellation, local files only, demuxers that read one file).

* :mod:`.tools`: the ffmpeg/ffprobe runner and its error mapping.
* :mod:`.probe`: :class:`MediaInfo` from ffprobe; the input whitelists; truncation check.
* :mod:`.convert`: the MP4 plan (remux or transcode) and the conversion with progress.
* :mod:`.audio`: the first audio stream as 16 kHz mono float32, window by window.
* :mod:`.package`: an MP4 with a subtitle track per language (or one burnt in), a preview frame.
* :mod:`.style`: how subtitles look, burnt in or in a styled (ASS) file.
* :mod:`.tracks`: what an import records (duration, the subtitle tracks a file carries); a
  track chosen and taken out as text.
"""

from mediaflows.media.audio import SAMPLE_RATE, audio_windows, decode_audio
from mediaflows.media.convert import ConversionPlan, ConvertedMedia, convert_to_mp4, plan_conversion
from mediaflows.media.probe import MediaInfo, MediaStream, check_complete, probe
from mediaflows.media.tools import ToolRun, ffmpeg_version, run_tool
from mediaflows.media.tracks import import_details

__all__ = [
    "SAMPLE_RATE",
    "ConversionPlan",
    "ConvertedMedia",
    "MediaInfo",
    "MediaStream",
    "ToolRun",
    "audio_windows",
    "check_complete",
    "convert_to_mp4",
    "decode_audio",
    "ffmpeg_version",
    "import_details",
    "plan_conversion",
    "probe",
    "run_tool",
]
