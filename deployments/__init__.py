"""How mediaflows runs: the Python API, the CLI, the embedded server, workers, set-up on the
server, and the files generated from the code.

The Python API is here, usable in a fresh interpreter with nothing called first (the first call
points Prefect at the server, starting the embedded one if needed)::

    from deployments import submit, status, wait
    run_id = submit("generate_srt", "alice", "FILE_ID", {"vtt": True})
    result = wait(run_id)  # SrtResult

* :mod:`.client`: the Python API (``submit``, ``status``, ``wait``).
* :mod:`.review`: a reviewer's side of it (``review``, ``resume``).
* :mod:`.cli`: the ``mediaflows`` command.
* :mod:`.server`, :mod:`.prefect_server`: the embedded Prefect server.
* :mod:`.setup`: concurrency limits, work pools, the crash automation, on the server.
* :mod:`.worker`, :mod:`.warm_worker`: workers for the deployments of ``prefect.yaml``.
* :mod:`.demo`: the main job on a bundled sample.
* :mod:`.generate`: the files generated from the code (docs, ``prefect.yaml``), and their check.
"""

from deployments.client import RunFailedError, RunStatus, connect, status, submit, wait
from deployments.review import ReviewWait, resume, review

__all__ = [
    "ReviewWait",
    "RunFailedError",
    "RunStatus",
    "connect",
    "resume",
    "review",
    "status",
    "submit",
    "wait",
]  # fmt: skip
