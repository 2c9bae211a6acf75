"""Running flows and their bodies: async flows with blocking bodies, subflows, final states,
flows made by a factory, flow runs executed where mediaflows wants them."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from mediaflows.cancel import CancelScope

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun, State

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def shared_api_client() -> Iterator[None]:
    """Let every task of a flow run reuse one API client.

    Without it each sync task run builds its own client, and with it an SSL context (loading the
    CA bundle: ~60 ms a task on a small machine, more than most of our tasks take). CHECK:
    cProfile a convert run without it (``load_verify_locations``).
    """
    from prefect.context import SyncClientContext

    with SyncClientContext.get_or_create():
        yield


#: How long a cancelled body gets to stop and clean up (its tools are killed at once).
CANCEL_GRACE_S = 20.0


async def run_blocking(body: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a flow's blocking body (its tasks are plain blocking calls) in a worker thread that
    shares one API client among them.

    Why the flows are ``async`` at all: Prefect's sync flow engine joins its heartbeat thread when
    a run ends (up to 1 s: a trivial sync flow took 1.15 s, async 0.40 s, measured); and in an
    event loop, the child flows of a batch overlap (one fetches while another holds the ``gpu``).
    The flow run's context goes with the thread, so the tasks belong to the run.

    If the run is cancelled or its process told to stop (Prefect raises in the event loop's
    thread; a thread cannot be interrupted), the body's ffmpeg is killed and its next check
    raises :class:`~mediaflows.errors.RunCancelledError`, so its ``finally`` blocks remove its
    work files before the run ends. CHECK: ``tests/test_cli.py`` (SIGTERM) and
    ``tests/deployments/test_worker.py`` (cancel).
    """
    scope = CancelScope()

    def in_thread() -> T:
        with scope, shared_api_client():
            return body(*args, **kwargs)

    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(None, contextvars.copy_context().run, in_thread)
    try:
        return await asyncio.shield(work)
    except BaseException:
        if not work.done():
            scope.cancel()
            # Cancelled again while it stops: wait no longer.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({work}, timeout=CANCEL_GRACE_S)
            if work.done() and not work.cancelled():
                work.exception()  # it ended RunCancelledError: seen, not "never retrieved"
        raise


def failed_with(message: str, data: T) -> T:
    """What a flow returns to end Failed with ``data`` as its result (a batch whose files
    failed returns its :class:`BatchResult` so). Prefect accepts a returned ``State`` as the
    run's final state; the flow's declared return type cannot say so. CHECK: none (typing)."""
    from prefect.states import Failed

    state: Any = Failed(message=message, data=data)
    return state  # type: ignore[no-any-return]


async def state_of(flow: Flow[..., Any], **parameters: Any) -> State[Any]:
    """Run ``flow`` (a subflow when called inside a flow run) and return its final state rather
    than its result. Prefect's overloads of ``Flow.__call__`` type ``return_state=True`` on an
    async flow called with ``**kwargs`` as the flow's result, or as a bare ``Awaitable``; this is
    the one place that calls it so. CHECK: mypy on ``await flow(..., return_state=True)``."""
    call: Any = flow(**parameters, return_state=True)
    state: State[Any] = await call
    return state


def run_subflow(flow: Flow[..., Any], **parameters: Any) -> Any:
    """Run ``flow`` as a child run of the flow run whose body calls this (in its worker thread,
    see :func:`run_blocking`: the run's context came with the thread) and return its result, or
    raise its error. The child is its own run in the UI, linked to the parent. CHECK:
    ``tests/flows/test_generate_srt_translations.py`` (the child run's parent task run)."""
    state = asyncio.run(state_of(flow, **parameters))
    value = result_of(state)
    if isinstance(value, BaseException):
        raise value
    return value


def is_termination(exc: BaseException) -> bool:
    """True for the exception Prefect raises in place of SIGTERM while a flow runs (its engine
    swaps in its own handler)."""
    from prefect.exceptions import TerminationSignal

    return isinstance(exc, TerminationSignal)


def retype(
    fn: Callable[..., Any], name: str, doc: str | None, result: Any, **annotations: Any
) -> None:
    """Give a flow function made by a factory its name, docstring and parameter types.

    Prefect builds the run form's schema and validates parameters from the function's signature
    (``inspect.signature``, which reads ``__signature__`` first): it must name the operation's
    own request and result models, not the factory's ``BaseModel``. CHECK: the run form of
    ``generate_srt`` in the UI (``tests/ui``) and the parameter schema of its deployment
    (``tests/deployments/test_worker.py``) show the request's fields.
    """
    signature = inspect.signature(fn)
    params = [
        p.replace(annotation=annotations.get(p.name, p.annotation))
        for p in signature.parameters.values()
    ]
    fn.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=result
    )
    fn.__annotations__ = {**{p.name: p.annotation for p in params}, "return": result}
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc


def execute_run(flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any]) -> None:
    """Execute an existing flow run in this thread (the Python API's in-process runs, a warm
    worker's runs). ``run_flow`` (Prefect's engine entry point, not public API) hands back a
    coroutine for an async flow (ours are), to be run to its end here. CHECK:
    ``tests/deployments/test_client.py`` and ``tests/deployments/test_warm_worker.py``."""
    from prefect.flow_engine import run_flow

    outcome = run_flow(flow, flow_run=flow_run, parameters=parameters, return_type="state")
    if asyncio.iscoroutine(outcome):
        asyncio.run(outcome)


def result_of(state: State[Any]) -> Any:
    """A final state's (persisted) result, or the exception of a failed one, read in this thread
    (``State.result`` returns a coroutine in some contexts)."""
    value = state.result(raise_on_failure=False)
    if asyncio.iscoroutine(value):
        value = asyncio.run(value)
    return value
