"""Errors raised by the run store, the queue and share links; messages are meant for users."""

from __future__ import annotations

from tlcore.errors import TransferLabError


class RunNotFound(TransferLabError):
    """No run with that id exists (it may have been deleted)."""


class RunStateError(TransferLabError):
    """The run is in a state that does not allow the requested action (e.g. deleting a running run)."""


class ShareError(TransferLabError):
    """A share link cannot be used; subclasses say why."""


class InvalidShareToken(ShareError):
    """The token is unknown, mistyped or tampered with (or its run was deleted)."""


class ShareExpired(ShareError):
    """The share link was valid but its expiry time has passed."""


class ShareRevoked(ShareError):
    """The share link was revoked by the run's owner."""


class DatabaseUnavailable(TransferLabError):
    """The run database cannot be reached or opened (server down, wrong password, missing database, no driver)."""
