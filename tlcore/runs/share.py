"""Read-only share links for runs.

A token is ``secrets.token_urlsafe(32)`` (256 bits). Only its sha256 is stored, so a leaked
database does not leak working links; lookups go by hash and are confirmed with
``hmac.compare_digest``. When a run has an ``owner``, only that owner (or a caller passing ``admin=True``:
the app's admin role) may share it or revoke its links; runs without owner (single-user local mode) may be
shared by anyone (the app lists them only in local mode and to admins).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from tlcore.runs.errors import InvalidShareToken, RunNotFound, ShareExpired, ShareRevoked
from tlcore.runs.models import RunRow, ShareLinkRow, utcnow
from tlcore.runs.records import Run, ShareLink, run_from_row, share_from_row
from tlcore.runs.store import RunStore

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,200}$")


def hash_token(token: str) -> str:
    """sha256 hex digest of a share token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_owner(run: RunRow, user: str | None, action: str, admin: bool = False) -> None:
    if run.owner is not None and user != run.owner and not admin:
        who = f"user {user!r}" if user else "an anonymous user"
        raise PermissionError(f"run {run.name!r} belongs to {run.owner!r}; {who} cannot {action}")


def create_share(store: RunStore, run_id: str, *, expires_in: timedelta, created_by: str | None = None,
                 label: str | None = None, admin: bool = False) -> tuple[str, ShareLink]:
    """Create a share link; returns ``(token, link)``. The token is shown once and never stored.

    Raises ``RunNotFound``, ``PermissionError`` (not the run's owner) or ``ValueError`` (bad expiry).
    """
    if expires_in <= timedelta(0):
        raise ValueError(f"expires_in must be positive, got {expires_in}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    with store.write_session() as s:
        run = s.get(RunRow, run_id)
        if run is None:
            raise RunNotFound(f"no run with id {run_id!r} (it may have been deleted)")
        _check_owner(run, created_by, "share it", admin)
        row = ShareLinkRow(id=uuid.uuid4().hex, run_id=run_id, token_hash=hash_token(token), created_at=now,
                           expires_at=now + expires_in, views=0, created_by=created_by,
                           label=(label or None) and label.replace("\x00", "\ufffd")[:200])  # PostgreSQL refuses NUL
        s.add(row)
        s.flush()
        link = share_from_row(row)
    log.info("run %s: share link %s created (expires %s)", run_id, link.id, link.expires_at.isoformat())
    return token, link


def resolve_share(store: RunStore, token: str) -> Run:
    """The run a token opens, counting one view. Raises ``InvalidShareToken`` (unknown, mistyped or
    tampered), ``ShareExpired`` or ``ShareRevoked``, each with its own message."""
    token = (token or "").strip()
    if not _TOKEN_RE.match(token):
        raise InvalidShareToken("this share link is not valid: the token is malformed (check it was copied completely)")
    digest = hash_token(token)
    with store.write_session() as s:
        row = s.scalar(select(ShareLinkRow).where(ShareLinkRow.token_hash == digest))
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise InvalidShareToken("this share link is not valid: unknown token (mistyped, tampered with, or its run was deleted)")
        now = utcnow()
        if row.revoked_at is not None:
            raise ShareRevoked(f"this share link was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC; ask the owner for a new one")
        if row.expires_at <= now:
            raise ShareExpired(f"this share link expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; ask the owner for a new one")
        s.execute(update(ShareLinkRow).where(ShareLinkRow.id == row.id)
                  .values(views=ShareLinkRow.views + 1, last_viewed_at=now)
                  .execution_options(synchronize_session=False))
        run = s.get(RunRow, row.run_id)
        if run is None:  # the foreign key cascades, so this only happens mid-delete
            raise InvalidShareToken("this share link is not valid: its run was deleted")
        return run_from_row(run)


def list_shares(store: RunStore, run_id: str) -> list[ShareLink]:
    """All links of a run (active, expired and revoked), newest first."""
    with store.session() as s:
        rows = s.scalars(select(ShareLinkRow).where(ShareLinkRow.run_id == run_id)
                         .order_by(ShareLinkRow.created_at.desc(), ShareLinkRow.id))
        return [share_from_row(r) for r in rows]


def revoke_share(store: RunStore, link_id: str, by: str | None = None, *, admin: bool = False) -> ShareLink:
    """Revoke a link now (idempotent). Raises ``InvalidShareToken`` for an unknown link id and
    ``PermissionError`` when ``by`` is not the run's owner."""
    with store.write_session() as s:
        row = s.get(ShareLinkRow, link_id, with_for_update=True)
        if row is None:
            raise InvalidShareToken(f"no share link with id {link_id!r}")
        run = s.get(RunRow, row.run_id)
        if run is not None:
            _check_owner(run, by, "revoke its share links", admin)
        if row.revoked_at is None:
            row.revoked_at, row.revoked_by = utcnow(), by
            log.info("share link %s revoked by %s", link_id, by or "-")
        return share_from_row(row)
