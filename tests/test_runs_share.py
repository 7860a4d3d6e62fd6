"""Share links: strong tokens stored only as hashes, expiry, revocation, views and ownership."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from datetime import timedelta

import pytest

from tlcore.runs import (
    InvalidShareToken,
    RunNotFound,
    RunStore,
    ShareError,
    ShareExpired,
    ShareRevoked,
    create_share,
    list_shares,
    resolve_share,
    revoke_share,
)
from tlcore.runs.share import hash_token

DAY = timedelta(days=1)


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    s = RunStore(db_url)
    yield s
    s.dispose()


def raw_database(store: RunStore, tmp_path) -> bytes:
    """Every byte the database holds: SQLite's files, or a pg_dump of the PostgreSQL database."""
    store.dispose()  # checkpoint SQLite's WAL so every byte is in files we can read
    if store.url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in (tmp_path / "app").glob("runs.db*"))
    from postgres_fixture import find_bin_dir
    from sqlalchemy.engine import make_url

    url = make_url(store.url)
    pg_dump = str(find_bin_dir() / "pg_dump") if find_bin_dir() else "pg_dump"
    dump = subprocess.run([pg_dump, "-h", url.host, "-p", str(url.port), "-U", url.username,
                           "-d", url.database], env={**os.environ, "PGPASSWORD": url.password or ""},
                          capture_output=True, check=True)
    assert b"CREATE TABLE public.share_links" in dump.stdout
    return dump.stdout


def test_tokens_are_strong_and_only_their_hash_is_stored(store, tmp_path):
    run = store.create_run({"modality": "text"}, "shared")
    token, link = create_share(store, run.id, expires_in=DAY, label="for Ana")
    other, _ = create_share(store, run.id, expires_in=DAY)
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert token != other and link.state == "active" and link.label == "for Ana"
    raw = raw_database(store, tmp_path)
    assert token.encode() not in raw and other.encode() not in raw
    assert hash_token(token).encode() in raw


def test_a_label_with_a_nul_character_is_stored_on_every_backend(store):
    run = store.create_run({"modality": "text"}, "shared")
    _, link = create_share(store, run.id, expires_in=DAY, label="for\x00Ana" + "x" * 300)
    (listed,) = list_shares(store, run.id)
    assert listed.label == link.label == "for\ufffdAna" + "x" * 193


def test_resolve_counts_views(store):
    run = store.create_run({"modality": "image"}, "shared")
    token, link = create_share(store, run.id, expires_in=DAY)
    assert resolve_share(store, token).id == run.id
    assert resolve_share(store, " " + token + "\n").name == "shared"  # pasted with whitespace
    (listed,) = list_shares(store, run.id)
    assert listed.id == link.id and listed.views == 2 and listed.last_viewed_at is not None


def test_unknown_tampered_expired_and_revoked_are_refused_with_distinct_messages(store):
    run = store.create_run({"modality": "text"}, "shared")
    token, _ = create_share(store, run.id, expires_in=DAY)
    expired_token, _ = create_share(store, run.id, expires_in=timedelta(milliseconds=1))
    revoked_token, revoked = create_share(store, run.id, expires_in=DAY)
    time.sleep(0.01)
    revoke_share(store, revoked.id)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    messages = {}
    for name, bad, kind in [("tampered", tampered, InvalidShareToken), ("malformed", "not a token!", InvalidShareToken),
                            ("expired", expired_token, ShareExpired), ("revoked", revoked_token, ShareRevoked)]:
        with pytest.raises(kind) as info:
            resolve_share(store, bad)
        assert isinstance(info.value, ShareError)
        messages[name] = str(info.value)
    assert "unknown token" in messages["tampered"] and "malformed" in messages["malformed"]
    assert "expired" in messages["expired"] and "revoked" in messages["revoked"]
    assert len(set(messages.values())) == 4
    assert [link.state for link in list_shares(store, run.id)].count("active") == 1
    assert sum(link.views for link in list_shares(store, run.id)) == 0  # refusals are not views


def test_deleting_a_run_invalidates_its_links(store):
    run = store.create_run({"modality": "text"}, "gone")
    token, _ = create_share(store, run.id, expires_in=DAY)
    store.delete_run(run.id)
    with pytest.raises(InvalidShareToken):
        resolve_share(store, token)


def test_only_the_owner_may_share_and_revoke(store):
    run = store.create_run({"modality": "text"}, "alice's", owner="alice")
    with pytest.raises(PermissionError, match="belongs to 'alice'; user 'bob' cannot share it"):
        create_share(store, run.id, expires_in=DAY, created_by="bob")
    with pytest.raises(PermissionError, match="anonymous"):
        create_share(store, run.id, expires_in=DAY)
    token, link = create_share(store, run.id, expires_in=DAY, created_by="alice")
    assert link.created_by == "alice"
    with pytest.raises(PermissionError, match="cannot revoke"):
        revoke_share(store, link.id, by="bob")
    assert resolve_share(store, token).owner == "alice"  # anyone holding the token may view
    revoked = revoke_share(store, link.id, by="alice")
    assert revoked.state == "revoked" and revoked.revoked_by == "alice"
    assert revoke_share(store, link.id, by="alice").revoked_at == revoked.revoked_at  # idempotent


def test_local_runs_without_owner_can_be_shared_by_anyone(store):
    run = store.create_run({"modality": "audio"}, "local")
    _, link = create_share(store, run.id, expires_in=DAY, created_by="whoever")
    assert revoke_share(store, link.id).state == "revoked"


def test_bad_arguments_are_refused(store):
    run = store.create_run({"modality": "text"}, "r")
    with pytest.raises(ValueError, match="positive"):
        create_share(store, run.id, expires_in=timedelta(0))
    with pytest.raises(ShareError, match="no share link"):
        revoke_share(store, "nope")
    with pytest.raises(RunNotFound, match="no run with id"):
        create_share(store, "nope", expires_in=DAY)
