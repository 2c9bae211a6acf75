"""The one way mediaflows runs ffmpeg and ffprobe.

A :class:`ToolRun` starts the tool with an argument list (never a shell string) and no stdin,
keeps the tail of its stderr, kills it when it runs past its time limit (or, for a stream that is
read piece by piece, when it produces nothing for that long), ties it to the current run so that
cancelling the run kills it (:mod:`mediaflows.cancel`), and turns its failure into the error tree:
a file ffmpeg cannot read is a :class:`MediaError` (not retried), a full disk a
:class:`ResourceError`, a missing binary a :class:`ConfigurationError`.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from functools import lru_cache
from types import TracebackType

from mediaflows import cancel
from mediaflows.errors import (
    ConfigurationError,
    MediaError,
    ResourceError,
    ToolTimeoutError,
    UnsafeMediaError,
)

#: What ffmpeg's demuxers that open other files or URLs are, for the message that refuses them.
INDIRECTIONS = {
    "hls": "an HLS playlist",
    "concat": "an ffconcat list",
    "ffconcat": "an ffconcat list",
    "dash": "a DASH manifest",
    "image2": "an image sequence",
    "tee": "a tee list",
}


def tool_error(name: str, stderr: str, failure: str = "not a readable media file") -> Exception:
    """The error for a tool that failed on ``name`` with this stderr."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    whitelist = re.search(r"\[(\w+) @ [^]]+\] Format not on whitelist", stderr)
    if whitelist:
        demuxer = whitelist.group(1)
        if demuxer in INDIRECTIONS:
            return UnsafeMediaError(name, f"is {INDIRECTIONS[demuxer]}, not a media file; refused")
        return MediaError(name, f"unsupported format {demuxer!r}")
    if any("No space left on device" in ln for ln in lines):
        return ResourceError(f"{name}: no space left on device")
    if any("Cannot allocate memory" in ln for ln in lines):
        return ResourceError(f"{name}: out of memory")
    if "matches no streams" in stderr:
        return MediaError(name, "has no audio stream")
    detail = lines[-1] if lines else "the tool failed"
    # Local paths (work dirs) mean nothing to the user: keep only the message after them.
    detail = re.sub(r"file:\S+?: ", "", detail)
    detail = re.sub(r"(/[^\s:]+)+: ", "", detail)
    return MediaError(name, f"{failure} ({detail[:300]})")


class ToolRun:
    """One running ffmpeg/ffprobe process; use it as a context manager (it is killed on exit).

    Args:
        args: The command line, binary first.
        name: The input's name, for error messages.
        timeout: Seconds the whole run may take, or, with ``stall_timeout``, that one
            :meth:`read` may wait.
        stall_timeout: Bound each read instead of the whole run (a stream consumed slowly).
        failure: How an unreadable input is described ("cannot decode audio").
    """

    def __init__(
        self,
        args: list[str],
        name: str,
        timeout: float,
        *,
        stall_timeout: bool = False,
        failure: str = "not a readable media file",
    ) -> None:
        self.args, self.name, self.timeout, self.failure = args, name, timeout, failure
        self.stall_timeout = stall_timeout
        try:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise ConfigurationError(f"cannot run {args[0]!r}: {exc} (install ffmpeg)") from exc
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stdout = self.proc.stdout
        stderr = self.proc.stderr
        self._stderr_tail: deque[bytes] = deque(maxlen=200)
        self._err_reader = threading.Thread(
            target=lambda: self._stderr_tail.extend(stderr), daemon=True
        )
        self._err_reader.start()
        self._timed_out = threading.Event()
        self._watchdog: threading.Timer | None = None
        self._untrack = cancel.track(self.proc)  # cancelling the run kills it
        if not stall_timeout:
            self._arm()

    # -- the watchdog ---------------------------------------------------------------------------
    def _kill(self) -> None:
        self._timed_out.set()
        self.proc.kill()

    def _arm(self) -> None:
        self._watchdog = threading.Timer(self.timeout, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    # -- output ---------------------------------------------------------------------------------
    def read(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` of stdout (fewer only at its end)."""
        if not self.stall_timeout:
            return self.stdout.read(nbytes)
        self._arm()
        try:
            return self.stdout.read(nbytes)
        finally:
            self._disarm()

    def lines(self) -> Iterator[str]:
        """Stdout, line by line, decoded and stripped."""
        for raw in self.stdout:
            yield raw.decode(errors="replace").strip()

    @property
    def stderr(self) -> str:
        """The tail of what the tool wrote to stderr (complete once it has ended)."""
        return b"".join(self._stderr_tail).decode(errors="replace")

    # -- the end --------------------------------------------------------------------------------
    def finish(self) -> None:
        """Wait for the tool after the end of its output; raise if it was cancelled, ran out of
        time or failed."""
        self.proc.wait()
        self._disarm()
        self._err_reader.join(timeout=5)
        cancel.check()
        if self._timed_out.is_set():
            what = "produced nothing for" if self.stall_timeout else "ran over"
            raise ToolTimeoutError(
                f"{self.name}: {self.args[0].rsplit('/', 1)[-1]} {what} {self.timeout:.0f} s "
                "and was stopped"
            )
        if self.proc.returncode != 0:
            raise tool_error(self.name, self.stderr, self.failure)

    def close(self) -> None:
        """Kill the tool if it is still running, and let go of it."""
        self._disarm()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err_reader.join(timeout=5)
        self._untrack()
        self.stdout.close()

    def __enter__(self) -> ToolRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_tool(args: list[str], name: str, timeout: float) -> bytes:
    """Run a tool to its end; its stdout. Raises like :meth:`ToolRun.finish`."""
    with ToolRun(args, name, timeout) as run:
        out = run.stdout.read()
        run.finish()
    return out


@lru_cache(maxsize=4)
def ffmpeg_version(binary: str = "ffmpeg") -> str:
    """The ffmpeg version string, e.g. ``ffmpeg 5.1.9-0+deb12u1`` (part of output ids)."""
    try:
        out = run_tool([binary, "-hide_banner", "-version"], binary, 30).decode(errors="replace")
    except (MediaError, ToolTimeoutError) as exc:
        raise ConfigurationError(f"cannot run {binary!r}: {exc} (install ffmpeg)") from exc
    match = re.match(r"ffmpeg version (\S+)", out)
    return f"ffmpeg {match.group(1) if match else 'unknown'}"
