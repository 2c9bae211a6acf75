"""One operation over many files: a batch's pre-flight plan, measured speeds and outcome
(:mod:`.plan`), and the sweep's decisions (:mod:`.sweep`: which files of a watch folder to
import, which inputs still lack the requested output, which outputs are past retention)."""

from mediaflows.batches.plan import (
    BatchPlan,
    batch_ids,
    failure_message,
    file_duration,
    measured_speed,
    plan,
    record_speed,
    summarize,
)
from mediaflows.batches.sweep import (
    ENDED_GRACE_S,
    SETTLE_S,
    STALE_WORKSPACE_S,
    expired_outputs,
    import_folder,
    pending_inputs,
    remove_stale_workspaces,
)

__all__ = [
    "ENDED_GRACE_S",
    "SETTLE_S",
    "STALE_WORKSPACE_S",
    "BatchPlan",
    "batch_ids",
    "expired_outputs",
    "failure_message",
    "file_duration",
    "import_folder",
    "measured_speed",
    "pending_inputs",
    "plan",
    "record_speed",
    "remove_stale_workspaces",
    "summarize",
]
