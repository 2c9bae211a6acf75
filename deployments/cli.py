"""The ``mediaflows`` command: import files, run operations through Prefect, fetch outputs.

Results are printed as JSON (one object per line); input errors exit with status 2 and a single
line on stderr, configuration errors with 3, a batch with failed files with 4, an LLM repair whose
answers were refused for too much of the file with 5, anything else with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mediaflows.errors import ConfigurationError, InputError, LLMOutputError, MediaflowsError
from mediaflows.ids import check_file_id, check_profile
from mediaflows.operations import OPERATIONS, OperationSpec, get_operation
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore

EXIT_INPUT = 2
EXIT_CONFIG = 3
EXIT_BATCH_FAILED = 4  # the batch ran; some of its files failed (the result names them)
EXIT_OUTPUT_REFUSED = 5  # the model's answers were refused for too much of the file


def _emit(obj: BaseModel | dict[str, Any]) -> None:
    text = obj.model_dump_json() if isinstance(obj, BaseModel) else json.dumps(obj, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _start_prefect(verbose: bool) -> None:
    """Point Prefect at the server (starting the embedded one), then import it quietly."""
    from deployments.client import connect

    connect()
    if not verbose:
        # Failures are reported as one line by this command; the logs, tracebacks included, are
        # on the server (UI). Must be set before Prefect configures logging.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def cmd_import(args: argparse.Namespace) -> None:
    from mediaflows.media import import_details

    store = ProfileStore.from_settings()
    profile = check_profile(args.profile)
    for path in args.paths:
        file = store.import_file(profile, Path(path), details=import_details(Path(path)))
        line = {key: getattr(file, key) for key in ("profile", "name", "kind", "size", "sha256")}
        tracks = file.details.get("subtitle_tracks")  # a video's: usable as `--track N|LANG`
        _emit({"file_id": file.id, **line, **({"subtitle_tracks": tracks} if tracks else {})})


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


# ---- request options, generated from the request models ----------------------------------------
# Every field of an operation's request model is an option (``rules.max_cps`` → ``--max-cps``):
# booleans are flags (``--vtt``; ``--no-vad`` for those on by default), tuples repeat or take a
# comma list (``--glossary A --glossary "B, C"``), literals offer their choices. Options left out
# take the model's defaults, and the model validates the whole request (exit 2 on bad values).

_REQUEST_DEST = "request."


def _plain_type(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _add_request_options(
    p: argparse.ArgumentParser,
    model: type[BaseModel],
    flags: typing.Mapping[str, str],
    prefix: str = "",
) -> None:
    for name, field in model.model_fields.items():
        kind = _plain_type(field.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            _add_request_options(p, kind, flags, f"{prefix}{name}.")
            continue
        dest = f"{_REQUEST_DEST}{prefix}{name}"
        flag = flags.get(name, "--" + name.replace("_", "-"))
        default = field.get_default(call_default_factory=True)
        text = field.description or ""
        options: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS}
        if kind is bool:
            if default is True:
                flag = "--no-" + flag.removeprefix("--")
                options.update(action="store_false", help=f"do not: {text}".rstrip(": "))
            else:
                options.update(action="store_true", help=text)
        elif typing.get_origin(kind) is tuple:
            options.update(action="append", type=_split_list, metavar="ITEM[,ITEM…]",
                           help=f"{text} (repeatable)")  # fmt: skip
        elif typing.get_origin(kind) is typing.Literal:
            choices = typing.get_args(kind)
            options.update(
                choices=choices, type=type(choices[0]), help=f"{text} (default {default})"
            )
        else:
            shown = f" (default {default})" if default is not None else ""
            options.update(type=kind if kind in (int, float) else str, metavar=name.upper(),
                           help=f"{text}{shown}")  # fmt: skip
        p.add_argument(flag, **options)


def _request(spec: OperationSpec[Any, Any, Any, Any], args: argparse.Namespace) -> BaseModel:
    """The operation's request from the options given on the command line."""
    fields: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith(_REQUEST_DEST):
            continue
        *parents, name = dest.removeprefix(_REQUEST_DEST).split(".")
        target = fields
        for parent in parents:
            target = target.setdefault(parent, {})
        if isinstance(value, list):  # a repeated tuple option: one flat list
            value = [item for items in value for item in items]
        target[name] = value
    request: BaseModel = spec.parse_request(fields)
    return request


def cmd_run(args: argparse.Namespace) -> None:
    spec = get_operation(args.operation)
    profile, file_id = check_profile(args.profile), check_file_id(args.file_id)
    request = _request(spec, args)
    _start_prefect(args.verbose)
    from flows.batch import OPERATION_FLOWS

    run = OPERATION_FLOWS[spec.name]
    if getattr(request, "review", "never") != "never":
        from tasks.review import watch as watch_reviews

        watch_reviews(_review_hint)
    if sys.stderr.isatty():
        from tasks.progress import watch

        watch(_progress_bar)
    try:
        result = asyncio.run(run(profile=profile, file_id=file_id, request=request))
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    _print_result(result, args.json)


def _review_hint(wait: Any) -> None:
    """A run of this command waits for a reviewer: how to answer, on stderr (stdout keeps the
    result)."""
    print(f"\nrun {wait.run_id} waits for a review of {len(wait.cues)} cues until "
          f"{wait.deadline:%Y-%m-%d %H:%M:%S} UTC: mediaflows review {wait.run_id} "
          "(or the Resume button in the UI)", file=sys.stderr, flush=True)  # fmt: skip


def _progress_bar(percent: float, description: str) -> None:
    """The run's progress on a terminal: ``[#######.............]  35% processing: window 3/9 …``
    on one line, rewritten in place (stdout, and ``--json``, are left as they are)."""
    width = 24
    done = round(width * percent / 100)
    columns = shutil.get_terminal_size((100, 20)).columns
    line = f"[{'#' * done}{'.' * (width - done)}] {percent:3.0f}% {description}"
    print(f"\r{line[: columns - 1]}\x1b[K", end="", file=sys.stderr, flush=True)


def cmd_batch(args: argparse.Namespace) -> int:
    from mediaflows.models import BatchResult

    profile = check_profile(args.profile)
    file_ids = [check_file_id(i) for i in args.file_ids]
    if not file_ids and not args.all_in_profile:
        raise InputError("give file ids, or --all-in-profile")
    spec = get_operation(args.operation)
    request = _request(spec, args)
    _start_prefect(args.verbose)
    from flows.batch import BATCHES
    from tasks.prefect_adapter import result_of, state_of

    state = asyncio.run(
        state_of(
            BATCHES[spec.name],
            profile=profile,
            file_ids=file_ids,
            request=request,
            mode=args.mode,
            in_flight=args.in_flight,
            all_in_profile=args.all_in_profile,
        )
    )
    result = result_of(state)
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
    from deployments.server import client_auth, redact_url
    from deployments.setup import ensure_setup

    settings = get_settings()
    _emit({"api_url": redact_url(os.environ["PREFECT_API_URL"]),
           "auth": "sent (redacted)" if client_auth(settings) else "none",
           **ensure_setup(settings)})  # fmt: skip


def cmd_worker(args: argparse.Namespace) -> int:
    """A worker for a mediaflows pool, with the environment its runs need: a warm worker (runs
    in its own process, the model loaded once; one per GPU with ``--gpus``), or Prefect's
    worker of the pool's type (``--kind process``: a new process or container per run) with a
    watcher beside it that resubmits the runs whose process or container died."""
    import socket

    from deployments.worker import warm_worker_command, worker_command, worker_env

    _start_prefect(args.verbose)
    env = worker_env(get_settings())
    kind = args.kind or ("warm" if args.pool == "mediaflows-process" else "process")
    if kind == "process":
        return _supervise([(worker_command(args.pool, args.name, args.limit), env)], args.pool)
    name = args.name or f"warm-{socket.gethostname()}-{os.getpid()}"
    limit = args.limit or 4
    if not args.gpus:
        command = warm_worker_command(args.pool, name, limit)
        os.execvpe(command[0], command, env)
    # One warm worker per GPU, each seeing only its own card (its model loaded there once).
    return _supervise(
        [(warm_worker_command(args.pool, f"{name}-gpu{gpu}", limit),
          {**env, "CUDA_VISIBLE_DEVICES": gpu}) for gpu in args.gpus.split(",")],
        watch=None,  # each warm worker resubmits crashed runs itself
    )  # fmt: skip


#: Seconds a worker child has to end after SIGTERM/SIGINT before it is killed (above the warm
#: worker's 20 s to stop its runs and hand them back).
STOP_GRACE_S = 30.0
#: A worker child that ends unasked is started again, unless it ended this many times in the
#: last RESTART_WINDOW_S (then it is left ended: a crash loop is no worker).
MOST_RESTARTS, RESTART_WINDOW_S = 3, 300.0


def _supervise(commands: list[tuple[list[str], dict[str, str]]], watch: str | None) -> int:
    """Run the worker ``commands`` as children, SIGTERM/SIGINT handed on to them, with a
    :class:`~deployments.crashes.CrashWatcher` of pool ``watch``. A child that ends unasked is
    started again (Prefect 3.8's process worker dies when a crashed run it has not yet let go
    of is scheduled again: "this borrower is already holding one of this CapacityLimiter's
    tokens", seen on a loaded machine). The worst exit status (0 when a signal asked them to
    stop)."""
    from deployments.crashes import CrashWatcher, log_to_stderr

    log_to_stderr()
    children = [subprocess.Popen(command, env=env) for command, env in commands]
    ended: list[list[float]] = [[] for _ in commands]

    def kill_stragglers() -> None:
        for child in children:
            if child.poll() is None:
                print(f"worker {child.pid} still running {STOP_GRACE_S:g} s after the signal: "
                      "killed (its runs' containers go on)", file=sys.stderr)  # fmt: skip
                child.kill()

    stopping = threading.Event()

    def forward(signum: int, frame: object) -> None:
        stopping.set()
        for child in children:
            child.send_signal(signum)
        # Prefect's docker worker does not end after SIGTERM (Prefect 3.8: it turns it into a
        # SIGINT to itself and then waits, idle, measured here); a stop must stop.
        timer = threading.Timer(STOP_GRACE_S, kill_stragglers)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    watcher = CrashWatcher(watch) if watch else None
    if watcher:
        watcher.start()
    try:
        left: set[int] = set()  # children left ended
        while not stopping.wait(0.5):
            for i, child in enumerate(children):
                status = child.poll()
                if status is None or i in left or stopping.is_set():
                    continue
                now = time.monotonic()
                ended[i] = [t for t in ended[i] if t > now - RESTART_WINDOW_S] + [now]
                if len(ended[i]) > MOST_RESTARTS or status == 0:
                    left.add(i)
                    continue
                print(f"worker {child.pid} ended with status {status}: started again",
                      file=sys.stderr)  # fmt: skip
                command, env = commands[i]
                children[i] = subprocess.Popen(command, env=env)
                if stopping.is_set():  # the signal came while it started
                    children[i].terminate()
            if all(child.poll() is not None for child in children):
                break
        worst = max(child.wait() for child in children)
        return 0 if stopping.is_set() else worst  # asked to stop, stopped
    finally:
        if watcher:
            watcher.stop()


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
        if args.insecure and not server.server_auth(settings):
            print(
                f"WARNING: --insecure: the Prefect server on {settings.server.host} lets anyone "
                "who reaches it start, read and cancel runs, with no authentication "
                f"(set {server.AUTH_SETTING} instead)",
                file=sys.stderr,
            )
        url = server.ensure_server(settings, insecure=args.insecure)
        _emit(
            {
                "api_url": server.redact_url(url),
                "ui_url": server.redact_url(url).removesuffix("/api"),
                "auth": bool(server.server_auth(settings)),
            }
        )
    elif args.action == "stop":
        _emit({"stopped": server.stop_server(settings)})
    else:
        url = server.embedded_api_url(settings)
        _emit({"api_url": url, "running": server.is_healthy(url)})


def _edits(path: Path, run_id: str) -> tuple[dict[str, str | None], str]:
    """A reviewer's edits file: ``{"cues": {"de:5": "new text", "de:6": "accept"}}``, with
    ``"run_id"`` (checked) and ``"reviewer"`` optional; or the cue mapping alone."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON edits file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a JSON object of cue keys to texts")
    named = data.get("run_id")
    if named is not None and str(named) != run_id:
        raise InputError(f"{path} is for run {named}, not {run_id}: nothing sent")
    if "cues" in data:
        cues = data["cues"]
    else:
        cues = {k: v for k, v in data.items() if k not in ("run_id", "reviewer")}
    if not isinstance(cues, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in cues.items()
    ):
        raise InputError(f'{path}: "cues" maps cue keys ("5", "de:5") to a text, "accept" or null')
    return cues, str(data.get("reviewer") or "")


def cmd_review(args: argparse.Namespace) -> None:
    from deployments.review import resume, review
    from mediaflows.subtitles.review import markdown

    _start_prefect(args.verbose)
    if args.edits is None:
        wait = review(args.run_id)
        if args.json:
            _emit(wait)
            return
        then = "the automatic text is delivered" if wait.timeout == "deliver" else "it fails"
        note = (f"Answer before {wait.deadline:%Y-%m-%d %H:%M:%S} UTC (then {then}): "
                f"mediaflows review {args.run_id} --edits FILE.json")  # fmt: skip
        if wait.refused:
            note = f"The last answer was refused: {wait.refused}\n\n{note}"
        print(markdown(wait.cues, wait.title, note))
        return
    cues, reviewer = _edits(Path(args.edits), args.run_id)
    wait = resume(args.run_id, cues, reviewer=args.reviewer or reviewer)
    _emit({"run_id": args.run_id, "resumed": True, "answered": len(wait.cues)})


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
    batch = sub.add_parser(
        "batch", help="run one operation on many files (one child run per file)"
    ).add_subparsers(dest="operation", required=True)
    for spec in OPERATIONS.values():
        p = run.add_parser(spec.cli_name, help=spec.summary)
        p.add_argument("--profile", required=True)
        p.add_argument("file_id")
        _add_request_options(p, spec.request, spec.cli_flags)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=cmd_run)
        p = batch.add_parser(spec.cli_name, help=spec.summary)
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
        _add_request_options(p, spec.request, spec.cli_flags)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=cmd_batch)

    p = sub.add_parser(
        "setup", help="start the server (if embedded); create concurrency limits and work pools"
    )
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("worker", help="run a worker for the deployments (prefect.yaml)")
    p.add_argument("--pool", default="mediaflows-process", help="work pool (default: process)")
    p.add_argument("--name", default=None, help="worker name (default: warm-HOST-PID)")
    p.add_argument("--limit", type=int, default=None, help="flow runs at once (warm: 4)")
    p.add_argument(
        "--kind",
        choices=["warm", "process"],
        default=None,
        help="warm: runs in this worker's process, the model loaded once (the default for the "
        "process pool); process: Prefect's worker of the pool's type (a new process or "
        "container per run; the default for other pools)",
    )
    p.add_argument(
        "--gpus", default=None, help="e.g. 0,1: one warm worker per GPU (CUDA_VISIBLE_DEVICES)"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("server", help="the embedded Prefect server")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument(
        "--insecure",
        action="store_true",
        help="start on a non-loopback host without MEDIAFLOWS_SERVER__AUTH (anyone may call it)",
    )
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("review", help="a run waiting for a reviewer: its cues, or the answer")
    p.add_argument("run_id")
    p.add_argument("--edits", help='answer with a JSON file: {"cues": {"de:5": "text"}}')
    p.add_argument("--reviewer", help="your name, recorded with the answer")
    p.add_argument("--json", action="store_true", help="print the waiting cues as JSON")
    p.set_defaults(func=cmd_review)

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
    stops its tools and removes its work files (see ``tasks.prefect_adapter.run_blocking``)."""


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
    except LLMOutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_OUTPUT_REFUSED
    except MediaflowsError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 128 + signal.SIGTERM
    except BaseException as exc:
        # Prefect swaps in its own SIGTERM handler while a flow runs; it raises its own signal.
        from tasks.prefect_adapter import is_termination

        if is_termination(exc):
            return 128 + signal.SIGTERM
        raise
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
