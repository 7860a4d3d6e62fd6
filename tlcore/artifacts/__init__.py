"""The artifact store: where run folders, resume checkpoints and uploaded data sets live for every host.

    TRANSFERLAB_ARTIFACTS_URL=s3://team-bucket/transferlab      # or gs://..., az://..., /mnt/shared/transferlab
    TRANSFERLAB_ARTIFACTS_OPTIONS='{"endpoint_url": "http://minio:9000"}'   # fsspec storage options (JSON; optional)

Unset (the default), everything stays on the local disk where today's layout puts it and nothing is copied: one
machine runs the app and its worker. Set, it is any URL ``fsspec`` opens, and the engine still works in a local
folder (fast, atomic renames); the worker copies to and from the store (:mod:`tlcore.runs.worker`)::

    <url>/runs/<run id>/...                       a finished run folder; report.json is uploaded last
    <url>/checkpoints/<run id>/LATEST             the name of the newest complete checkpoint snapshot
    <url>/checkpoints/<run id>/<snapshot>/...     checkpoints/<stage>/ of the staging folder, as written
    <url>/sets/<sha256>/<name>                    a data set (file or folder) by the hash of its content
    <url>/sets/<sha256>/.complete-<name>          written after the set's last file: the set is usable
    <url>/features/[users/<owner key>/]<key>.npy  the feature cache (backbone + data content hash), per owner

Everything is written so a reader never sees half of it: a run folder counts once its report.json is there, a
checkpoint snapshot once LATEST names it, a set once its ``.complete-<name>`` exists. Credentials come the usual way of the
backend (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_ENDPOINT_URL`` for S3, ...).

The parts: :mod:`~tlcore.artifacts.files` (local folders: content hashes, complete checkpoint sets),
:mod:`~tlcore.artifacts.remote` (the fsspec filesystem under the URL) and :mod:`~tlcore.artifacts.store`
(:class:`ArtifactStore`: what goes where).
"""

from tlcore.artifacts.files import content_hash
from tlcore.artifacts.remote import ARTIFACTS_OPTIONS_ENV, ARTIFACTS_URL_ENV
from tlcore.artifacts.store import ArtifactStore

__all__ = ["ARTIFACTS_OPTIONS_ENV", "ARTIFACTS_URL_ENV", "ArtifactStore", "content_hash"]
