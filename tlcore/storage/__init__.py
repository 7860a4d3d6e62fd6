"""Disk housekeeping: how much each part of ``home()`` uses, LRU eviction of the caches past a size cap, and the
``python -m tlcore gc`` clean-up.

What may be evicted: only *derived* data that is rebuilt on demand - the feature cache (``cache/features/*.npy``),
unzipped copies of uploaded archives (``cache/unzipped/<hash>/``) and a worker's copies of data sets fetched from
the artifact store (``cache/sets/<sha256>/``), and, with an artifact store, a host's copies of finished runs that
the store holds (``app/runs/<id>/`` beside its ``.<id>.version`` stamp, written only once the folder is complete in
the store: a run being written, or whose only copy is here, has none). Uploads, other run folders, stored eval
splits and demos are never evicted (splits are tiny and keep before/after numbers comparable; demos are rebuilt only
by hand). Use is recorded by touching the entry's mtime on every hit; eviction removes the least recently used
entries first until the evictable total is under the cap, and never an entry that is in use:

* a job holds a **lease** on every unzipped copy or fetched set it reads (:func:`lease`, a shared ``flock`` on
  ``<folder>/.leases/<name>.lock``, taken before the entry is looked at and held until the job's
  :func:`leases_held` scope ends, or its process dies); eviction takes the lock exclusively without waiting and
  skips the entry when it cannot, so a run of any length never loses files under it;
* an entry used in the last ``IN_USE_S`` seconds is kept too (readers outside a job, such as the app's pages).

Limits: ``TRANSFERLAB_CACHE_MAX_GB`` (default 20 GB, decimal) caps the evictable caches; temporary leftovers
(``.part`` uploads, ``.<hash>-*`` extraction folders, ``.*.npy`` / ``*.tmp<pid>`` partial writes) older than
``STALE_S`` (1 hour) are removed by ``gc``.

    usage()                      # {"features": bytes, "unzipped": ..., "splits": ..., "demos": ..., "uploads": ..., "runs": ...}
    usage_bytes(folder)          # bytes of regular files under a folder (links not followed): per-user quotas
    gc(dry_run=True)             # GcReport: what would be removed and why

One module a concern: :mod:`~tlcore.storage.disk_usage` (sizes and caps), :mod:`~tlcore.storage.leases` (in use),
:mod:`~tlcore.storage.eviction` (what may go, least recently used first), :mod:`~tlcore.storage.cleanup` (``gc``)
and :mod:`~tlcore.storage.disk_errors` (a full or read-only disk, said in one line).
"""

from tlcore.storage.cleanup import (
    CLASSICAL_PREFIX,
    LAUNCH_PREFIX,
    STALE_S,
    GcReport,
    gc,
    orphan_scratch_folders,
    owned_scratch_prefix,
    stale_temporaries,
)
from tlcore.storage.disk_errors import storage_problem
from tlcore.storage.disk_usage import (
    CACHE_PARTS,
    DEFAULT_CACHE_MAX_GB,
    DEFAULT_STORE_FEATURES_MAX_GB,
    cache_max_bytes,
    human,
    runs_dir,
    store_features_max_bytes,
    usage,
    usage_bytes,
)
from tlcore.storage.eviction import (
    EVICTABLE,
    IN_USE_S,
    Entry,
    Removed,
    cache_entries,
    evict,
    evict_after_write,
    run_copies,
    stored_stamp,
)
from tlcore.storage.leases import LEASES, in_use, lease, leases_held, touch

__all__ = ["CACHE_PARTS", "DEFAULT_CACHE_MAX_GB", "DEFAULT_STORE_FEATURES_MAX_GB", "EVICTABLE", "IN_USE_S",
           "CLASSICAL_PREFIX", "LAUNCH_PREFIX", "LEASES", "STALE_S", "Entry", "GcReport", "Removed", "cache_entries", "cache_max_bytes",
           "evict", "evict_after_write", "gc", "human", "in_use", "lease", "leases_held", "orphan_scratch_folders", "owned_scratch_prefix",
           "run_copies", "runs_dir", "stale_temporaries", "storage_problem", "store_features_max_bytes",
           "stored_stamp", "touch", "usage", "usage_bytes"]
