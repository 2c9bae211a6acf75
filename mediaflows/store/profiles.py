"""The profile store: users' libraries of files, on local disk or S3.

Layout, under the store root (a directory, or ``s3://bucket/prefix``)::

    profiles/{profile}/files/{file_id}        the content
    profiles/{profile}/files/{file_id}.json   its metadata (a ProfileFile)

A file exists once its metadata exists. Content is written first and metadata last, each write
atomic (temp file + rename on disk; a single PUT or a completed multipart upload on S3), so a crash
never leaves a half-written file visible. Output ids are deterministic (``ids.output_file_id``),
so a re-run overwrites nothing and finds what an earlier run stored.
"""

from __future__ import annotations

import hashlib
import mimetypes
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import BufferedReader
from pathlib import Path
from typing import Any

from mediaflows.errors import ConfigurationError, InputError, ProfileFileNotFoundError
from mediaflows.files import atomic_path, remove_abandoned_temp_files, temp_name
from mediaflows.ids import check_file_id, check_profile, content_file_id
from mediaflows.models import FileKind, ProfileFile, StoredFile
from mediaflows.settings import Settings, get_settings
from mediaflows.store.backends import Backend, LocalBackend, S3Backend, store_errors

_EXTRA_TYPES = {
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".ass": "text/x-ass",
    ".ssa": "text/x-ssa",
    ".ttml": "application/ttml+xml",
    ".dfxp": "application/ttml+xml",
    ".sbv": "text/x-sbv",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".opus": "audio/ogg",
    ".json": "application/json",
}


#: The content types of the subtitle formats mediaflows reads (mediaflows.subtitles.formats).
SUBTITLE_TYPES = frozenset(
    {"application/x-subrip", "text/vtt", "text/x-ass", "text/x-ssa", "application/ttml+xml",
     "text/x-sbv"}
)  # fmt: skip


def guess_content_type(name: str) -> str:
    """The MIME type of a file name ('application/octet-stream' if unknown)."""
    suffix = Path(name).suffix.lower()
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def guess_kind(content_type: str) -> FileKind:
    """The kind of a file from its MIME type."""
    if content_type in SUBTITLE_TYPES:
        return "subtitle"
    major = content_type.split("/", 1)[0]
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    return "other"


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's content, read in chunks."""
    with path.open("rb") as f:
        return _sha256_of_handle(f)


def _sha256_of_handle(f: BufferedReader) -> str:
    return hashlib.file_digest(f, "sha256").hexdigest()


class ProfileStore:
    """Profiles and their files, on one backend chosen by the store URL."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.url = url
        self._backend: Backend
        if url.startswith("s3://"):
            self._backend = S3Backend(url, self.settings)
        elif "://" in url and not url.startswith("file://"):
            raise ConfigurationError(f"unsupported store URL {url!r} (use a path or s3://)")
        else:
            self._backend = LocalBackend(Path(url.removeprefix("file://")))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ProfileStore:
        """The store that the settings name."""
        settings = settings or get_settings()
        return cls(settings.store.url, settings)

    # keys ------------------------------------------------------------------------------------
    @staticmethod
    def _blob_key(profile: str, file_id: str) -> str:
        return f"profiles/{check_profile(profile)}/files/{check_file_id(file_id)}"

    def _meta_key(self, profile: str, file_id: str) -> str:
        return self._blob_key(profile, file_id) + ".json"

    # reading ---------------------------------------------------------------------------------
    def find(self, profile: str, file_id: str) -> ProfileFile | None:
        """The metadata of a file, or None if the profile has no such file."""
        key = self._meta_key(profile, file_id)
        with store_errors(f"reading {profile}/{file_id}"):
            data = self._backend.read_bytes(key)
        return None if data is None else ProfileFile.model_validate_json(data)

    def get(self, profile: str, file_id: str) -> ProfileFile:
        """The metadata of a file; :class:`ProfileFileNotFoundError` if there is none."""
        found = self.find(profile, file_id)
        if found is None:
            raise ProfileFileNotFoundError(profile, file_id)
        return found

    def list_files(self, profile: str) -> list[ProfileFile]:
        """Every file of a profile, in id order."""
        prefix = f"profiles/{check_profile(profile)}/files/"
        with store_errors(f"listing {profile}"):
            names = self._backend.list_names(prefix)
        ids = [n.removesuffix(".json") for n in names if n.endswith(".json")]
        return [f for f in (self.find(profile, i) for i in ids) if f is not None]

    def local_file(self, file: ProfileFile) -> Path | None:
        """The stored file itself on a local backend (read it, never write it); None on S3."""
        direct = self._backend.local_path(self._blob_key(file.profile, file.id))
        if direct is not None and not direct.is_file():
            raise ProfileFileNotFoundError(file.profile, file.id)
        return direct

    def stage(self, file: ProfileFile, workspace: Path) -> Path:
        """A local path with the file's content, for tools that need one.

        The local backend hands out the stored file itself (see :meth:`local_file`); S3 downloads
        into ``workspace``, which the caller removes when done.
        """
        direct = self.local_file(file)
        if direct is not None:
            return direct
        key = self._blob_key(file.profile, file.id)
        workspace.mkdir(parents=True, exist_ok=True)
        dest = workspace / f"{file.id}{file.suffix}"
        with store_errors(f"downloading {file.profile}/{file.id}"):
            self._backend.get_file(key, dest)
        return dest

    def download(self, profile: str, file_id: str, dest: Path) -> ProfileFile:
        """Copy a file's content to ``dest`` (atomically) and return its metadata."""
        file = self.get(profile, file_id)
        with (
            atomic_path(dest, fsync=False) as tmp,
            store_errors(f"downloading {profile}/{file_id}"),
        ):
            self._backend.get_file(self._blob_key(profile, file_id), tmp)
        return file

    def read_bytes(self, file: ProfileFile) -> bytes:
        """The content of a (small) profile file."""
        key = self._blob_key(file.profile, file.id)
        with store_errors(f"reading {file.profile}/{file.id}"):
            data = self._backend.read_bytes(key)
        if data is None:
            raise ProfileFileNotFoundError(file.profile, file.id)
        return data

    def read_text(self, file: ProfileFile) -> str:
        """The content of a (small, UTF-8 text) profile file."""
        return self.read_bytes(file).decode("utf-8")

    def media_url(self, file: ProfileFile) -> str:
        """A URL to the content: ``file://`` locally, presigned HTTPS on S3."""
        return self._backend.url(
            self._blob_key(file.profile, file.id), file.name, file.content_type
        )

    def stored(self, file: ProfileFile) -> StoredFile:
        """The file with a fresh media URL."""
        return StoredFile(file=file, media_url=self.media_url(file))

    def remove_abandoned_temp_files(self, grace_s: float, stale_s: float) -> list[Path]:
        """Delete the temporary files that writers killed mid-write left in a local store and in
        the scratch directory of :meth:`put_text` (see :func:`files.abandoned_temp_files`);
        on S3 an unfinished upload never becomes an object, so there is nothing to delete."""
        removed = remove_abandoned_temp_files(self.settings.work_path / "tmp", grace_s, stale_s)
        root = self._backend.local_path("profiles")
        if root is not None:
            removed += remove_abandoned_temp_files(root, grace_s, stale_s)
        return removed

    # writing ---------------------------------------------------------------------------------
    def delete(self, profile: str, file_id: str) -> None:
        """Remove a file: its metadata first (it no longer exists), then its content."""
        with store_errors(f"deleting {profile}/{file_id}"):
            self._backend.delete(self._meta_key(profile, file_id))
            self._backend.delete(self._blob_key(profile, file_id))

    def put_text(self, profile: str, file_id: str, text: str, **meta: Any) -> ProfileFile:
        """Store a text output (subtitles, transcript JSON); see :meth:`put_file`."""
        existing = self.find(profile, file_id)
        if existing is not None:
            return existing
        data = text.encode("utf-8")
        scratch = self.settings.work_path / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        tmp = scratch / temp_name(file_id)
        try:
            tmp.write_bytes(data)
            return self.put_file(
                profile, file_id, tmp, sha256=hashlib.sha256(data).hexdigest(), move=True, **meta
            )
        finally:
            tmp.unlink(missing_ok=True)

    def import_file(
        self,
        profile: str,
        path: Path,
        name: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> ProfileFile:
        """Add a local file to a profile. Its id comes from its content: importing twice is a
        no-op."""
        check_profile(profile)
        if not path.is_file():
            raise InputError(f"{path}: not a file")
        sha256 = sha256_of(path)
        return self.put_file(
            profile,
            content_file_id(sha256),
            path,
            name=name or path.name,
            sha256=sha256,
            details=details,
        )

    def put_file(
        self,
        profile: str,
        file_id: str,
        path: Path,
        *,
        name: str,
        kind: FileKind | None = None,
        content_type: str | None = None,
        sha256: str | None = None,
        source_file_id: str | None = None,
        operation: str | None = None,
        options: dict[str, Any] | None = None,
        tools: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        move: bool = False,
    ) -> ProfileFile:
        """Store a local file under ``file_id``, content first, metadata last.

        Idempotent: if the profile already has ``file_id``, the stored metadata is returned and
        nothing is written. With ``move`` the local file may be moved instead of copied (for
        scratch outputs that are deleted afterwards anyway).
        """
        existing = self.find(profile, file_id)
        if existing is not None:
            return existing
        content_type = content_type or guess_content_type(name)
        size = path.stat().st_size
        with path.open("rb") as content, ThreadPoolExecutor(max_workers=1) as pool:
            # Hash while the content is copied, uploaded or synced: hashlib releases the GIL, so
            # the two overlap instead of adding up. The open handle survives a move (same inode).
            digest = pool.submit(_sha256_of_handle, content) if sha256 is None else None
            with store_errors(f"writing {profile}/{file_id}"):
                self._backend.put_file(self._blob_key(profile, file_id), path, move=move)
            sha256 = sha256 or (digest.result() if digest else "")
        meta = ProfileFile(
            id=file_id,
            profile=profile,
            name=name,
            kind=kind or guess_kind(content_type),
            content_type=content_type,
            size=size,
            sha256=sha256,
            created=datetime.now(UTC),
            source_file_id=source_file_id,
            operation=operation,
            options=options or {},
            tools=tools or {},
            details=details or {},
        )
        with store_errors(f"writing {profile}/{file_id}"):
            self._backend.write_bytes(
                self._meta_key(profile, file_id), meta.model_dump_json(indent=2).encode()
            )
        return meta
