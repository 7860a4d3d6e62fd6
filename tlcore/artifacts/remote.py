"""The fsspec filesystem under an artifact store's URL: opened on first use, paths under its root, and the few
operations the store is built from (put a list of files, write a small text, download a tree)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from fsspec.core import url_to_fs

ARTIFACTS_URL_ENV = "TRANSFERLAB_ARTIFACTS_URL"
ARTIFACTS_OPTIONS_ENV = "TRANSFERLAB_ARTIFACTS_OPTIONS"


def modified(info: dict) -> Any:
    """When an fsspec entry was last written, as its backend reports it (a datetime on S3, seconds on a disk)."""
    return info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("created")


class RemoteRoot:
    """A folder at ``url`` (any fsspec URL or local path), reached through fsspec.

    Args:
        url: any fsspec URL or local path.
        storage_options: passed to the fsspec filesystem (e.g. ``{"endpoint_url": ...}`` for an S3-compatible
            server); default ``$TRANSFERLAB_ARTIFACTS_OPTIONS`` (JSON).
    """

    def __init__(self, url: str, *, storage_options: Optional[dict] = None):
        if not url:
            raise ValueError(f"no artifact store URL given; set {ARTIFACTS_URL_ENV}")
        self.url = str(url).rstrip("/")
        if storage_options is None:
            raw = os.environ.get(ARTIFACTS_OPTIONS_ENV, "").strip()
            try:
                storage_options = json.loads(raw) if raw else {}
            except ValueError:
                raise ValueError(f"{ARTIFACTS_OPTIONS_ENV} must be a JSON object of fsspec storage options, got "
                                 f"{raw[:80]!r}") from None
        self.storage_options = dict(storage_options)
        self._fs: Any = None
        self._root = ""
        self._local = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (opened on first use: no I/O in ``__init__``)."""
        if self._fs is None:
            # A fresh instance per store: fsspec's shared instances cache listings, and other hosts write here.
            self._fs, self._root = url_to_fs(self.url, skip_instance_cache=True, **self.storage_options)
            self._root = self._root.rstrip("/")
            protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
            self._local = "file" in protocols
            if self._local:  # object stores have no folders; a local one needs them before a file is put
                self._fs.makedirs(self._root, exist_ok=True)
        return self._fs

    def _path(self, *parts: str) -> str:
        root = self._root if self._fs is not None else (self.fs and self._root)
        return "/".join([root, *parts])

    def _url_of(self, path: str) -> str:
        """A path of this store's filesystem written the way the user wrote the store's URL."""
        return self.url + path[len(self._root):] if path.startswith(self._root) else path

    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache()
        return bool(self.fs.exists(path))

    def _put_files(self, pairs: list[tuple[Path, str]]) -> None:
        if not pairs:
            return
        if self._local:
            for parent in {b.rsplit("/", 1)[0] for _, b in pairs}:
                self.fs.makedirs(parent, exist_ok=True)
        self.fs.put([str(a) for a, _ in pairs], [b for _, b in pairs])

    def _write_text(self, path: str, text: str) -> None:
        if self._local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, text.encode("utf-8"))

    def _get_tree(self, prefix: str, dest: Path, *, skip: tuple[str, ...] = ()) -> int:
        """Download every file under ``prefix`` into ``dest`` (same relative paths); returns the count."""
        self.fs.invalidate_cache()
        remote = [p for p in self.fs.find(prefix) if p.rsplit("/", 1)[-1] not in skip]
        pairs = [(p, dest / p[len(prefix):].lstrip("/")) for p in remote]
        for _, local in pairs:
            local.parent.mkdir(parents=True, exist_ok=True)
        if pairs:
            self.fs.get([a for a, _ in pairs], [str(b) for _, b in pairs])
        return len(pairs)
