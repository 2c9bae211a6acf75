"""Tasks retry transient faults only: a real Prefect task against the test server."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prefect import flow, task
from prefect.cache_policies import NONE

from mediaflows.errors import MediaError, StoreUnavailableError, is_transient
from mediaflows.store.backends import store_errors as _store_errors
from tasks.retry import RETRYING

calls: list[str] = []


@task(cache_policy=NONE, **{**RETRYING, "retry_delay_seconds": 0})
def flaky(failures: list[BaseException]) -> str:
    calls.append("x")
    if failures:
        raise failures.pop(0)
    return "ok"


@flow
def run_flaky(failures: list[BaseException]) -> str:
    return flaky(failures)


def test_transient_faults_are_retried_until_success() -> None:
    calls.clear()
    assert run_flaky([StoreUnavailableError("503"), ConnectionResetError()]) == "ok"
    assert len(calls) == 3


def test_input_errors_are_not_retried() -> None:
    calls.clear()
    with pytest.raises(MediaError):
        run_flaky([MediaError("x.mp4", "corrupt")])
    assert len(calls) == 1


def _s3_error(status: int, code: str) -> OSError:
    # What s3fs raises for an S3 error answer: an OSError caused by botocore's ClientError.
    answer: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    cause = ClientError(answer, "GetObject")
    exc = OSError(errno.EIO, code)
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    "exc,transient",
    [
        (_s3_error(500, "InternalError"), True),
        (_s3_error(503, "SlowDown"), True),
        (_s3_error(400, "InvalidArgument"), False),
    ],
)
def test_store_maps_s3_answers_onto_the_error_tree(exc: OSError, transient: bool) -> None:
    with pytest.raises(Exception) as info, _store_errors("reading"):
        raise exc
    assert is_transient(info.value) is transient
    assert isinstance(info.value, StoreUnavailableError) is transient
