"""The profile store, on both backends (local disk, S3 over HTTP through moto)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mediaflows.errors import InvalidIdError, ProfileFileNotFoundError
from mediaflows.files import atomic_path, temp_writer
from mediaflows.settings import Settings
from mediaflows.store import ProfileStore


def test_import_is_content_addressed_and_idempotent(store: ProfileStore, tmp_path: Path) -> None:
    src = tmp_path / "clip.mkv"
    src.write_bytes(b"\x1a\x45\xdf\xa3 some bytes" * 100)
    first = store.import_file("alice", src)
    second = store.import_file("alice", src)
    assert first == second
    assert first.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert first.kind == "video" and first.content_type == "video/x-matroska"
    assert first.size == src.stat().st_size
    assert [f.id for f in store.list_files("alice")] == [first.id]
    assert store.list_files("bob") == []


def test_put_get_download_and_media_url(store: ProfileStore, tmp_path: Path) -> None:
    src = tmp_path / "a.srt"
    src.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    meta = store.put_file(
        "alice",
        "out1",
        src,
        name="a.srt",
        source_file_id="in1",
        operation="test",
        options={"x": 1},
        tools={"t": "1"},
        details={"d": 2},
    )
    assert store.get("alice", "out1") == meta
    assert meta.kind == "subtitle" and meta.source_file_id == "in1"
    dest = tmp_path / "back.srt"
    store.download("alice", "out1", dest)
    assert dest.read_bytes() == src.read_bytes()
    url = store.media_url(meta)
    if store.url.startswith("s3://"):
        assert url.startswith("http://127.0.0.1") and "Signature" in url
    else:
        assert url.startswith("file://")
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == src.read_bytes()
    # Same id again: nothing is rewritten.
    other = tmp_path / "other.srt"
    other.write_text("different")
    assert store.put_file("alice", "out1", other, name="other.srt") == meta
    store.download("alice", "out1", dest)
    assert dest.read_bytes() == src.read_bytes()


def test_missing_file_is_an_input_error(store: ProfileStore) -> None:
    assert store.find("alice", "nope") is None
    with pytest.raises(ProfileFileNotFoundError):
        store.get("alice", "nope")


def test_no_temp_files_left_after_writes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = ProfileStore(str(root), Settings(home=tmp_path))
    src = tmp_path / "x.bin"
    src.write_bytes(b"x" * 10000)
    store.import_file("p", src)
    names = [p.name for p in root.rglob("*")]
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]


_HALF_WRITER = """
import sys, time
from pathlib import Path
from mediaflows.files import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    tmp.write_bytes(b"half")
    print(tmp, flush=True)
    time.sleep(600)
"""


def test_temp_files_of_killed_writers_are_removed_those_of_live_writers_kept(
    tmp_path: Path,
) -> None:
    """kill -9 mid-write leaves a hidden temp file (its writer cannot remove it); the clean-up
    the sweep runs removes it once it is older than the grace period, keeps a live writer's and
    another host's, and removes any that has been untouched past the stale age."""
    root = tmp_path / "store"
    store = ProfileStore(str(root), Settings(home=tmp_path))
    final = root / "profiles" / "p" / "files" / "f1"
    writer = subprocess.Popen(
        [sys.executable, "-c", _HALF_WRITER, str(final)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    killed = Path(writer.stdout.readline().strip())
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert killed.exists() and temp_writer(killed) == (socket.gethostname(), writer.pid)
    assert store.list_files("p") == []  # hidden: never a file of the profile
    other_host = final.with_name(".f2~elsewhere.example~1~abc.tmp")
    other_host.write_bytes(b"x")
    with atomic_path(final.with_name("f3")) as live:
        live.write_bytes(b"being written")
        assert store.remove_abandoned_temp_files(grace_s=3600, stale_s=7200) == []
        assert store.remove_abandoned_temp_files(grace_s=0, stale_s=7200) == [killed]
        assert live.exists() and other_host.exists()
        old = time.time() - 7300
        os.utime(other_host, (old, old))
        assert store.remove_abandoned_temp_files(grace_s=0, stale_s=7200) == [other_host]
        assert live.exists()
    assert (final.parent / "f3").read_bytes() == b"being written"


@pytest.mark.parametrize(
    "profile,file_id",
    [
        ("../x", "a"),
        ("/abs", "a"),
        ("%2e%2e/", "a"),
        ("p", "../x"),
        ("p", "a\x00"),
        ("p", "x" * 300),
        ("", "a"),
        ("p", ""),
    ],
)
def test_bad_ids_rejected_before_any_io(profile: str, file_id: str, tmp_path: Path) -> None:
    # Both stores point nowhere reachable: any I/O would raise something else than InvalidIdError.
    settings = Settings.model_validate(
        {"home": tmp_path, "store": {"s3_endpoint_url": "http://127.0.0.1:9"}}
    )
    local_root = tmp_path / "never-created"
    for store in (ProfileStore(str(local_root), settings), ProfileStore("s3://b/p", settings)):
        with pytest.raises(InvalidIdError):
            store.find(profile, file_id)
        with pytest.raises(InvalidIdError):
            store.put_file(profile, file_id, tmp_path, name="x")
        with pytest.raises(InvalidIdError):
            store.download(profile, file_id, tmp_path / "out")
    assert not local_root.exists()
