"""The ``mediaflows`` command: import files, run operations through Prefect, fetch outputs.

Results are printed as JSON (one object per line); input errors exit with status 2 and a single
line on stderr, configuration errors with 3, anything else with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mediaflows.errors import ConfigurationError, InputError, MediaflowsError
from mediaflows.ids import check_file_id, check_profile
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore

EXIT_INPUT = 2
EXIT_CONFIG = 3
EXIT_BATCH_FAILED = 4  # the batch ran; some of its files failed (the result names them)


def _emit(obj: BaseModel | dict[str, Any]) -> None:
    text = obj.model_dump_json() if isinstance(obj, BaseModel) else json.dumps(obj, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _start_prefect(verbose: bool) -> None:
    """Point Prefect at the server (starting the embedded one), then import it quietly."""
    from deployments.server import configure_prefect_env

    configure_prefect_env(get_settings())
    if not verbose:
        # Failures are reported as one line by this command; the logs, tracebacks included, are
        # on the server (UI). Must be set before Prefect configures logging.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def cmd_import(args: argparse.Namespace) -> None:
    store = ProfileStore.from_settings()
    profile = check_profile(args.profile)
    for path in args.paths:
        file = store.import_file(profile, Path(path), details=_media_details(Path(path)))
        _emit(
            {
                "file_id": file.id,
                "profile": file.profile,
                "name": file.name,
                "kind": file.kind,
                "size": file.size,
                "sha256": file.sha256,
            }
        )


def _media_details(path: Path) -> dict[str, Any] | None:
    """The duration of a media file (batch pre-flight estimates use it); None for other files."""
    from mediaflows.media import probe

    try:
        info = probe(path, path.name)
    except MediaflowsError:
        return None
    return {"duration": info.content_duration or info.duration}


def cmd_list(args: argparse.Namespace) -> None:
    for file in ProfileStore.from_settings().list_files(check_profile(args.profile)):
        _emit(file)


def cmd_get(args: argparse.Namespace) -> None:
    store = ProfileStore.from_settings()
    file = store.download(check_profile(args.profile), check_file_id(args.file_id), Path(args.o))
    _emit(
        {
            "file_id": file.id,
            "profile": file.profile,
            "path": str(Path(args.o).resolve()),
            "size": file.size,
        }
    )


def _request(operation: str, args: argparse.Namespace) -> BaseModel:
    """The request model of ``operation`` from its command-line options."""
    from mediaflows.models import (
        ConvertRequest,
        CueRules,
        FixSrtRequest,
        GenerateSrtRequest,
        TranscribeRequest,
    )

    if operation == "fix-srt":
        glossary = tuple(t.strip() for t in (args.glossary or "").split(",") if t.strip())
        return FixSrtRequest(model=args.model, sys_msg=args.sys_msg, glossary=glossary)
    if operation == "convert":
        return ConvertRequest(
            codec=args.codec,
            crf=args.crf,
            preset=args.preset,
            max_height=args.max_height,
            audio_bitrate=args.audio_bitrate,
        )
    options = {
        "language": args.language,
        "task": args.task,
        "beam_size": args.beam_size,
        "vad": not args.no_vad,
        "initial_prompt": args.initial_prompt,
        "hotwords": args.hotwords,
        "model": args.model,
    }
    if operation == "transcribe":
        return TranscribeRequest(**options)
    rules = CueRules(
        max_line_chars=args.max_line_chars, max_lines=args.max_lines, max_cps=args.max_cps
    )
    return GenerateSrtRequest(**options, rules=rules, vtt=args.vtt, json_output=args.json_output)


def cmd_run(args: argparse.Namespace) -> None:
    profile, file_id = check_profile(args.profile), check_file_id(args.file_id)
    request = _request(args.operation, args)
    _start_prefect(args.verbose)
    from flows.convert import convert
    from flows.fix_srt import fix_srt
    from flows.generate_srt import generate_srt
    from flows.transcribe import transcribe

    operation = {
        "convert": convert,
        "transcribe": transcribe,
        "generate-srt": generate_srt,
        "fix-srt": fix_srt,
    }
    result = asyncio.run(
        operation[args.operation](profile=profile, file_id=file_id, request=request)
    )
    _print_result(result, args.json)


def cmd_batch(args: argparse.Namespace) -> int:
    from mediaflows.models import BatchResult

    profile = check_profile(args.profile)
    file_ids = [check_file_id(i) for i in args.file_ids]
    if not file_ids and not args.all_in_profile:
        raise InputError("give file ids, or --all-in-profile")
    request = _request(args.operation, args)
    _start_prefect(args.verbose)
    from flows import batch

    flows = {
        "convert": batch.batch_convert,
        "transcribe": batch.batch_transcribe,
        "generate-srt": batch.batch_generate_srt,
        "fix-srt": batch.batch_fix_srt,
    }
    state = asyncio.run(
        flows[args.operation](
            profile=profile,
            file_ids=file_ids,
            request=request,
            mode=args.mode,
            in_flight=args.in_flight,
            all_in_profile=args.all_in_profile,
            return_state=True,
        )
    )
    result = state.result(raise_on_failure=False)
    if not isinstance(result, BatchResult):  # the batch itself broke, not a child
        raise result if isinstance(result, BaseException) else MediaflowsError(str(state.message))
    if args.json:
        _emit(result)
    else:
        print(f"{result.succeeded}/{result.total} succeeded ({result.cached} cached), "
              f"{result.failed} failed")  # fmt: skip
        for child in result.children:
            print(f"{child.file_id}\t{child.status}\t{child.output_id or child.error}")
    return EXIT_BATCH_FAILED if result.failed else 0


def cmd_setup(args: argparse.Namespace) -> None:
    _start_prefect(args.verbose)
    from deployments.setup import ensure_setup

    _emit({"api_url": os.environ["PREFECT_API_URL"], **ensure_setup(get_settings())})


def cmd_worker(args: argparse.Namespace) -> int:
    """``prefect worker start`` for a mediaflows pool, with the environment its runs need."""
    from deployments.worker import worker_command, worker_env

    _start_prefect(args.verbose)
    env = worker_env(get_settings())
    command = worker_command(args.pool, args.name, args.limit)
    os.execvpe(command[0], command, env)
    return 0  # not reached: exec replaces this process


def _print_result(result: BaseModel, as_json: bool) -> None:
    if as_json:
        _emit(result)
    else:
        for key, value in result.model_dump(mode="json").items():
            if key != "content":
                print(f"{key}: {value}")


def cmd_server(args: argparse.Namespace) -> None:
    from deployments import server

    settings = get_settings()
    if args.action == "start":
        url = server.ensure_server(settings)
        _emit({"api_url": url, "ui_url": url.removesuffix("/api")})
    elif args.action == "stop":
        _emit({"stopped": server.stop_server(settings)})
    else:
        url = server.embedded_api_url(settings)
        _emit({"api_url": url, "running": server.is_healthy(url)})


def cmd_demo(args: argparse.Namespace) -> None:
    from deployments.demo import run_demo

    _start_prefect(args.verbose)
    for line in run_demo(get_settings()):
        _emit(line)


OPERATIONS = {
    "convert": "video → web-ready MP4",
    "transcribe": "audio/video → transcript",
    "generate-srt": "audio/video → subtitles (SRT, VTT, JSON)",
    "fix-srt": "SRT → the same cues with their text repaired by an LLM",
}


def _operation_options(p: argparse.ArgumentParser, name: str) -> None:
    if name == "fix-srt":
        p.add_argument(
            "--model", default=None, help="one of MEDIAFLOWS_LLM__MODELS (default: first)"
        )
        p.add_argument("--sys-msg", default=None, help="extra instructions for the model")
        p.add_argument(
            "--glossary", default=None, help='names and terms, e.g. "Prefect, Kubernetes"'
        )
    elif name == "convert":
        p.add_argument("--codec", choices=["auto", "copy", "transcode"], default="auto")
        p.add_argument("--crf", type=int, default=23)
        p.add_argument("--preset", default="veryfast")
        p.add_argument("--max-height", type=int, default=None)
        p.add_argument("--audio-bitrate", default="128k")
    else:
        p.add_argument("--language", default=None, help="e.g. en; default: detect")
        p.add_argument("--task", choices=["transcribe", "translate"], default="transcribe")
        p.add_argument("--beam-size", type=int, default=5)
        p.add_argument("--no-vad", action="store_true", help="do not skip non-speech")
        p.add_argument("--initial-prompt", default=None)
        p.add_argument("--hotwords", default=None, help="names and terms to favour")
        p.add_argument("--model", default=None, help="model name or path")
    if name == "generate-srt":
        p.add_argument("--max-line-chars", type=int, default=42)
        p.add_argument("--max-lines", type=int, default=2)
        p.add_argument("--max-cps", type=float, default=20.0)
        p.add_argument("--vtt", action="store_true", help="also store WebVTT")
        p.add_argument("--json-output", action="store_true", help="also store JSON")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediaflows", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's logs")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="add local files to a profile")
    p.add_argument("--profile", required=True)
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("list", help="list a profile's files")
    p.add_argument("--profile", required=True)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("get", help="download a profile file")
    p.add_argument("--profile", required=True)
    p.add_argument("file_id")
    p.add_argument("-o", required=True, metavar="PATH")
    p.set_defaults(func=cmd_get)

    run = sub.add_parser("run", help="run one operation on one file").add_subparsers(
        dest="operation", required=True
    )
    batch = sub.add_parser(
        "batch", help="run one operation on many files (one child run per file)"
    ).add_subparsers(dest="operation", required=True)
    for name, help_text in OPERATIONS.items():
        p = run.add_parser(name, help=help_text)
        p.add_argument("--profile", required=True)
        p.add_argument("file_id")
        _operation_options(p, name)
        p.set_defaults(func=cmd_run)
        p = batch.add_parser(name, help=help_text)
        p.add_argument("--profile", required=True)
        p.add_argument("file_ids", nargs="*", metavar="FILE_ID")
        p.add_argument(
            "--all-in-profile", action="store_true", help="every imported file it applies to"
        )
        p.add_argument(
            "--mode",
            choices=["in-process", "distributed"],
            default="in-process",
            help="children in this process, or runs of the deployment on any worker",
        )
        p.add_argument("--in-flight", type=int, default=None, help="children at once")
        _operation_options(p, name)
        p.set_defaults(func=cmd_batch)

    p = sub.add_parser(
        "setup", help="start the server (if embedded); create concurrency limits and work pools"
    )
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("worker", help="run a Prefect worker for the deployments (prefect.yaml)")
    p.add_argument("--pool", default="mediaflows-process", help="work pool (default: process)")
    p.add_argument("--name", default=None, help="worker name (default: Prefect's)")
    p.add_argument("--limit", type=int, default=None, help="flow runs at once on this worker")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("server", help="the embedded Prefect server")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("demo", help="the main job on a bundled sample")
    p.set_defaults(func=cmd_demo)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Terminated(BaseException):
    """SIGTERM arrived (``kill``, ``docker stop``, a service manager): the run in this process
    stops its tools and removes its work files (see ``tasks._engine.run_blocking``)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mediaflows`` command."""
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] = args.func
    if args.func is not cmd_worker:  # the worker hands SIGTERM to Prefect's own handling
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = func(args)
    except (InputError, ValidationError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except MediaflowsError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 128 + signal.SIGTERM
    except BaseException as exc:
        # Prefect swaps in its own SIGTERM handler while a flow runs; it raises this.
        if type(exc).__name__ == "TerminationSignal":
            return 128 + signal.SIGTERM
        raise
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
