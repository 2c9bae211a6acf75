"""The ``mediaflows`` command: import files, run operations through Prefect, fetch outputs.

Results are printed as JSON (one object per line); input errors exit with status 2 and a single
line on stderr, configuration errors with 3, anything else with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
        file = store.import_file(profile, Path(path))
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


def cmd_run_convert(args: argparse.Namespace) -> None:
    from mediaflows.models import ConvertRequest

    profile, file_id = check_profile(args.profile), check_file_id(args.file_id)
    request = ConvertRequest(
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        max_height=args.max_height,
        audio_bitrate=args.audio_bitrate,
    )
    _start_prefect(args.verbose)
    from flows.convert import convert

    result = asyncio.run(convert(profile=profile, file_id=file_id, request=request))
    _print_result(result, args.json)


def _transcribe_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "language": args.language,
        "task": args.task,
        "beam_size": args.beam_size,
        "vad": not args.no_vad,
        "initial_prompt": args.initial_prompt,
        "hotwords": args.hotwords,
        "model": args.model,
    }


def cmd_run_transcribe(args: argparse.Namespace) -> None:
    from mediaflows.models import TranscribeRequest

    profile, file_id = check_profile(args.profile), check_file_id(args.file_id)
    request = TranscribeRequest(**_transcribe_options(args))
    _start_prefect(args.verbose)
    from flows.transcribe import transcribe

    _print_result(
        asyncio.run(transcribe(profile=profile, file_id=file_id, request=request)), args.json
    )


def cmd_run_generate_srt(args: argparse.Namespace) -> None:
    from mediaflows.models import CueRules, GenerateSrtRequest

    profile, file_id = check_profile(args.profile), check_file_id(args.file_id)
    rules = CueRules(
        max_line_chars=args.max_line_chars, max_lines=args.max_lines, max_cps=args.max_cps
    )
    request = GenerateSrtRequest(
        **_transcribe_options(args), rules=rules, vtt=args.vtt, json_output=args.json_output
    )
    _start_prefect(args.verbose)
    from flows.generate_srt import generate_srt

    _print_result(
        asyncio.run(generate_srt(profile=profile, file_id=file_id, request=request)), args.json
    )


def cmd_run_fix_srt(args: argparse.Namespace) -> None:
    from mediaflows.models import FixSrtRequest

    profile, file_id = check_profile(args.profile), check_file_id(args.file_id)
    glossary = tuple(t.strip() for t in (args.glossary or "").split(",") if t.strip())
    request = FixSrtRequest(model=args.model, sys_msg=args.sys_msg, glossary=glossary)
    _start_prefect(args.verbose)
    from flows.fix_srt import fix_srt

    _print_result(
        asyncio.run(fix_srt(profile=profile, file_id=file_id, request=request)), args.json
    )


def cmd_setup(args: argparse.Namespace) -> None:
    _start_prefect(args.verbose)
    from deployments.setup import ensure_concurrency_limits

    _emit(
        {
            "api_url": os.environ["PREFECT_API_URL"],
            "concurrency_limits": ensure_concurrency_limits(get_settings()),
        }
    )


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
    p = run.add_parser("convert", help="video → web-ready MP4")
    p.add_argument("--profile", required=True)
    p.add_argument("file_id")
    p.add_argument("--codec", choices=["auto", "copy", "transcode"], default="auto")
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--max-height", type=int, default=None)
    p.add_argument("--audio-bitrate", default="128k")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_run_convert)

    for name, func, help_text in (
        ("transcribe", cmd_run_transcribe, "audio/video → transcript"),
        ("generate-srt", cmd_run_generate_srt, "audio/video → subtitles (SRT, VTT, JSON)"),
    ):
        p = run.add_parser(name, help=help_text)
        p.add_argument("--profile", required=True)
        p.add_argument("file_id")
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
        p.set_defaults(func=func)

    p = run.add_parser("fix-srt", help="SRT → the same cues with their text repaired by an LLM")
    p.add_argument("--profile", required=True)
    p.add_argument("file_id")
    p.add_argument("--model", default=None, help="one of MEDIAFLOWS_LLM__MODELS (default: first)")
    p.add_argument("--sys-msg", default=None, help="extra instructions for the model")
    p.add_argument("--glossary", default=None, help='names and terms, e.g. "Prefect, Kubernetes"')
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_run_fix_srt)

    p = sub.add_parser("setup", help="start the server (if embedded), create concurrency limits")
    p.set_defaults(func=cmd_setup)

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mediaflows`` command."""
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
