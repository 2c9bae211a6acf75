"""The profile store (users' libraries of files, on local disk or S3) and the scratch space of
runs. Every write is atomic; outputs live under deterministic ids.

* :mod:`.profiles`: :class:`ProfileStore`: import, find, stage, store, delete profile files.
* :mod:`.backends`: the local-disk and S3 backends, their failures mapped onto the error tree.
* :mod:`.workspace`: per-run scratch directories.
"""

from mediaflows.store.profiles import ProfileStore, guess_content_type, guess_kind, sha256_of
from mediaflows.store.workspace import remove_workspace, workspace_path

__all__ = [
    "ProfileStore",
    "guess_content_type",
    "guess_kind",
    "remove_workspace",
    "sha256_of",
    "workspace_path",
]
