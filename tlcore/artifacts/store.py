"""The :class:`ArtifactStore`: what goes where under its URL (the layout is in :mod:`tlcore.artifacts`)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Optional

from tlcore import storage
from tlcore.artifacts.files import checkpoint_signature, content_hash, data_files
from tlcore.artifacts.remote import ARTIFACTS_URL_ENV, RemoteRoot, modified
from tlcore.storage import Removed

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactStore(RemoteRoot):
    """Run folders, checkpoints, shared feature files and data sets at ``url`` (:mod:`tlcore.artifacts`), through
    fsspec (:class:`~tlcore.artifacts.remote.RemoteRoot` takes ``url`` and ``storage_options``)."""

    @classmethod
    def from_env(cls) -> Optional[ArtifactStore]:
        """The store named by ``$TRANSFERLAB_ARTIFACTS_URL``; None when unset (everything stays on the local disk)."""
        url = os.environ.get(ARTIFACTS_URL_ENV, "").strip()
        return cls(url) if url else None

    # ------------------------------------------------------------------ run folders
    def has_run(self, run_id: str) -> bool:
        """Whether a finished run folder is in the store (its report.json, uploaded last)."""
        return self._exists(self._path("runs", run_id, "report.json"))

    def report_version(self, run_id: str) -> Optional[str]:
        """What identifies the stored report.json's current content (ETag, else size + modification time); it
        changes when a follow-up amends the report. None when the store has no finished run."""
        path = self._path("runs", run_id, "report.json")
        self.fs.invalidate_cache(path)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        tag = info.get("ETag") or info.get("etag")
        return str(tag) if tag else f"{info.get('size')}:{modified(info)}"

    def put_run(self, run_id: str, folder: Path) -> int:
        """Upload a finished run folder, report.json last (so a present report means a complete folder); returns
        the number of files. Files already there are replaced (an amended report)."""
        folder = Path(folder)
        files = data_files(folder)
        if not (folder / "report.json").is_file():
            raise FileNotFoundError(f"{folder} holds no report.json: only finished run folders are uploaded")
        target = self._path("runs", run_id)
        rest = [(f, f"{target}/{f.relative_to(folder).as_posix()}") for f in files if f.name != "report.json"
                or f.parent != folder]
        self._put_files(rest)
        self._put_files([(folder / "report.json", f"{target}/report.json")])
        log.info("uploaded run %s (%d files) to %s", run_id, len(files), self.url)
        return len(files)

    def get_run(self, run_id: str, dest: Path) -> Path:
        """Download a finished run folder to ``dest`` (through a hidden sibling renamed into place, so ``dest``
        is complete or absent); returns ``dest``. Raises FileNotFoundError when the store has no finished run."""
        dest = Path(dest)
        if not self.has_run(run_id):
            raise FileNotFoundError(f"run {run_id} has no finished run folder in {self.url}")
        tmp = dest.parent / f".{dest.name}.download-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._get_tree(self._path("runs", run_id), tmp)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def delete_run(self, run_id: str) -> None:
        """Remove a run's folder and checkpoints from the store (missing ones are fine)."""
        for prefix in (self._path("runs", run_id), self._path("checkpoints", run_id)):
            if self._exists(prefix):
                self.fs.rm(prefix, recursive=True)

    # ------------------------------------------------------------------ checkpoints
    def put_checkpoints(self, run_id: str, folder: Path, *, signature: Optional[tuple] = None) -> Optional[tuple]:
        """Upload a consistent snapshot of ``folder`` (a staging folder's ``checkpoints/``) as the run's newest
        checkpoint; returns its signature, or None when nothing complete is there or a save is under way.
        With ``signature`` (from the previous call), an unchanged folder is not uploaded again."""
        folder = Path(folder)
        if not folder.is_dir():
            return None
        before = checkpoint_signature(folder)
        if not before or before == signature:
            return before if before == signature else None
        snapshot = folder.parent / f".{folder.name}.upload-{os.getpid()}"
        shutil.rmtree(snapshot, ignore_errors=True)
        try:
            for rel, _, _ in before:
                (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / rel, snapshot / rel)
            if checkpoint_signature(folder) != before:
                return None  # a save began while copying: the next call takes the new one
            name = f"{time.time_ns():020d}"
            target = self._path("checkpoints", run_id, name)
            self._put_files([(snapshot / rel, f"{target}/{rel}") for rel, _, _ in before])
            self._write_text(self._path("checkpoints", run_id, "LATEST"), name)
        finally:
            shutil.rmtree(snapshot, ignore_errors=True)
        self._drop_old_checkpoints(run_id, keep=name)
        log.info("run %s: checkpoint %s uploaded", run_id, name)
        return before

    def _drop_old_checkpoints(self, run_id: str, keep: str) -> None:
        self.fs.invalidate_cache()
        for p in self.fs.ls(self._path("checkpoints", run_id), detail=False):
            name = p.rstrip("/").rsplit("/", 1)[-1]
            if name.isdigit() and name != keep:
                self.fs.rm(p, recursive=True)

    def get_checkpoints(self, run_id: str, dest: Path) -> bool:
        """Download the run's newest checkpoint snapshot into ``dest`` (a staging folder's ``checkpoints/``,
        replaced); False when the store has none."""
        latest = self._path("checkpoints", run_id, "LATEST")
        if not self._exists(latest):
            return False
        with self.fs.open(latest, "r") as fh:
            name = fh.read().strip()
        dest = Path(dest)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        count = self._get_tree(self._path("checkpoints", run_id, name), dest)
        log.info("run %s: checkpoint %s downloaded (%d files)", run_id, name, count)
        return count > 0

    def delete_checkpoints(self, run_id: str) -> None:
        prefix = self._path("checkpoints", run_id)
        if self._exists(prefix):
            self.fs.rm(prefix, recursive=True)

    # ------------------------------------------------------------------ feature cache
    def put_features(self, rel: str, path: Path) -> None:
        """Share a cached feature file with every host: ``rel`` is its path under ``cache/features`` (keyed by
        backbone and data content, inside its owner's folder). A local store gets it under a temporary name first."""
        target = self._path("features", *Path(rel).parts)
        if self._local:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{target}.tmp-{os.getpid()}"
            self.fs.put_file(str(path), tmp)
            self.fs.mv(tmp, target)
        else:
            self.fs.put_file(str(path), target)        # an object appears whole or not at all

    def get_features(self, rel: str, dest: Path) -> bool:
        """Download the shared feature file ``rel`` to ``dest`` (via a hidden sibling and a rename); False if the
        store has none."""
        source = self._path("features", *Path(rel).parts)
        if not self._exists(source):
            return False
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.stem}.fetch-{os.getpid()}.npy")
        try:
            self.fs.get_file(source, str(tmp))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def feature_files(self) -> list[tuple[str, int, float]]:
        """``(path, bytes, uploaded at)`` of every shared feature file (and interrupted upload), oldest first."""
        prefix = self._path("features")
        if not self._exists(prefix):
            return []
        out = []
        for path, info in self.fs.find(prefix, detail=True).items():
            if info.get("type", "file") != "file":
                continue
            when = modified(info)
            when = when.timestamp() if hasattr(when, "timestamp") else float(when or 0.0)
            out.append((path, int(info.get("size") or 0), when))
        return sorted(out, key=lambda t: t[2])

    def evict_features(self, max_bytes: int, *, dry_run: bool = False, now: Optional[float] = None,
                       min_age_s: float = 3600.0) -> tuple[list[Removed], int]:
        """Delete the oldest shared feature files until they fit ``max_bytes``; returns what went (or would go) and
        the bytes left. An object store records no reads, so *oldest uploaded* goes first (a host that misses one
        recomputes it, once, and uploads it again); nothing uploaded in the last ``min_age_s`` goes (a host may be
        fetching it), and interrupted uploads (``*.tmp-<pid>``) older than that go whatever the total."""
        now = time.time() if now is None else now
        files = self.feature_files()
        total = sum(size for _, size, _ in files)
        removed = []
        for path, size, when in files:
            partial = ".tmp-" in path.rsplit("/", 1)[-1]
            if (total <= max_bytes and not partial) or now - when < min_age_s:
                continue
            if not dry_run:
                try:
                    self.fs.rm(path)
                except FileNotFoundError:
                    pass                   # another host's gc was first
            total -= size
            why = ("interrupted upload" if partial else
                   f"oldest shared features (uploaded {(now - when) / 3600:.1f} h ago) past the store's cap")
            removed.append(Removed(self._url_of(path), size, why))
        return removed, total

    # ------------------------------------------------------------------ data sets
    def put_set(self, path: Path) -> dict:
        """Upload a data set (file or folder) once per content; returns its reference ``{"sha256", "name"}``.

        A file stored by the app's uploads (``uploads/<sha256>/<name>``) is named by that hash without reading it."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"data set {path} does not exist")
        digest = path.parent.name if path.is_file() and _HEX64.match(path.parent.name) else content_hash(path)
        ref = {"sha256": digest, "name": path.name}
        base = self._path("sets", digest)
        marker = f"{base}/.complete-{path.name}"   # the same content may come under two names (a.csv, b.csv)
        if self._exists(marker):
            return ref
        if path.is_file():
            pairs = [(path, f"{base}/{path.name}")]
        else:
            pairs = [(f, f"{base}/{path.name}/{f.relative_to(path).as_posix()}") for f in data_files(path)]
        self._put_files(pairs)
        self._write_text(marker, json.dumps(ref))
        log.info("uploaded data set %s (%s, %d files) to %s", path.name, digest[:12], len(pairs), self.url)
        return ref

    def get_set(self, ref: dict, cache: Path) -> Path:
        """The local copy of a data set: ``cache/<sha256>/<name>``, downloaded on first use (into a hidden sibling
        renamed into place, so a copy is complete or absent)."""
        digest, name = str(ref["sha256"]), str(ref["name"])
        if not _HEX64.match(digest) or "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a data set reference: {ref!r}")
        final = Path(cache) / digest / name
        storage.lease(final.parent)      # a cache entry (tlcore.storage): not evicted while this job reads it
        if final.exists():
            return final
        base = self._path("sets", digest)
        if not self._exists(f"{base}/.complete-{name}"):
            raise FileNotFoundError(f"data set {name} ({digest[:12]}) is not in {self.url}; upload it again")
        tmp = final.parent / f".{name}.download-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.unlink(missing_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.fs.isfile(f"{base}/{name}"):
                self.fs.get_file(f"{base}/{name}", str(tmp))
            else:
                tmp.mkdir()
                self._get_tree(f"{base}/{name}", tmp)
            try:
                os.replace(tmp, final)
            except OSError:  # another process put it in place first: theirs is the same content
                if not final.exists():
                    raise
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        storage.evict_after_write(keep=final.parent)
        return final
