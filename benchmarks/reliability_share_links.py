"""Reliability: hostile share links open nothing.

    .venv/bin/python benchmarks/reliability_share_links.py [--db URL]

Creates two runs with share links in a fresh store, then resolves each hostile token the way the app's
``?share=`` page does (``tlcore.runs.share.resolve_share``): random, revoked, expired, one character changed,
empty, whitespace, 1 MB long, SQL-looking, a link id instead of its token, the token's hash (what the database
holds), the token of another run. A *read* is a resolve that returns a run or counts a view; every hostile token
must end with its own clear message and 0 reads, and a valid token must open exactly its own run. Prints the table
of docs/reliability.md; ``tests/test_reliability.py`` asserts it.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _flip(token: str, i: int) -> str:
    c = token[i]
    return token[:i] + ("A" if c != "A" else "B") + token[i + 1:]


def campaign(store) -> list[dict]:
    """Resolve every hostile token against ``store``; one row per token: what happened and how many reads."""
    from sqlalchemy import func, select, update

    from tlcore.config import FinetuneConfig
    from tlcore.runs.errors import InvalidShareToken, ShareExpired, ShareRevoked
    from tlcore.runs.models import ShareLinkRow, utcnow
    from tlcore.runs.share import create_share, hash_token, resolve_share, revoke_share

    def make_run(name: str):
        return store.create_run(FinetuneConfig(modality="text", target="t.csv"), name, owner="alice@example.org")

    run_a, run_b = make_run("run A"), make_run("run B")
    tok_a, link_a = create_share(store, run_a.id, expires_in=timedelta(days=1), created_by="alice@example.org")
    tok_b, _ = create_share(store, run_b.id, expires_in=timedelta(days=1), created_by="alice@example.org")
    tok_revoked, link_revoked = create_share(store, run_a.id, expires_in=timedelta(days=1), created_by="alice@example.org")
    revoke_share(store, link_revoked.id, by="alice@example.org")
    tok_expired, link_expired = create_share(store, run_a.id, expires_in=timedelta(days=1), created_by="alice@example.org")
    with store.write_session() as s:   # time passes: the link's expiry is now in the past
        s.execute(update(ShareLinkRow).where(ShareLinkRow.id == link_expired.id)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))

    def views() -> int:
        with store.session() as s:
            return int(s.scalar(select(func.coalesce(func.sum(ShareLinkRow.views), 0))))

    hostile = [
        ("random token", secrets.token_urlsafe(32)),
        ("revoked", tok_revoked),
        ("expired", tok_expired),
        ("one character changed (first)", _flip(tok_a, 0)),
        ("one character changed (middle)", _flip(tok_a, len(tok_a) // 2)),
        ("one character changed (last)", _flip(tok_a, -1 % len(tok_a))),
        ("truncated by one", tok_a[:-1]),
        ("one character appended", tok_a + "x"),
        ("empty", ""),
        ("whitespace", "   \t "),
        ("1 MB long", "a" * (1 << 20)),
        ("SQL-looking: ' OR '1'='1", "' OR '1'='1"),
        ("SQL-looking: token' OR 1=1 --", tok_a[:20] + "' OR 1=1 --"),
        ("SQL-looking: %", "%" * 43),
        ("link id instead of token", link_a.id),
        ("stored hash instead of token", hash_token(tok_a)),
        ("NUL byte inside", tok_a[:10] + "\x00" + tok_a[11:]),
        ("non-ASCII look-alike", tok_a[:-1] + "é"),
    ]
    rows = []
    for kind, token in hostile:
        before = views()
        try:
            run = resolve_share(store, token)
            outcome, message, reads = "OPENED", f"opened run {run.name!r}", 1
        except (InvalidShareToken, ShareExpired, ShareRevoked) as exc:
            outcome, message, reads = "refused", str(exc), 0
        except Exception as exc:  # noqa: BLE001 - an unexpected exception is a figure too
            outcome, message, reads = "TRACEBACK", f"{type(exc).__name__}: {exc}", 0
        reads += views() - before
        rows.append({"kind": kind, "outcome": outcome, "reads": reads, "message": message[:120]})
    # The token of another run opens that run only (never run A): the page shows what the token names.
    before = views()
    run = resolve_share(store, tok_b)
    rows.append({"kind": "token of another run", "outcome": "opened its own run" if run.id == run_b.id else "WRONG RUN",
                 "reads": views() - before, "message": f"opened {run.name!r}, not {run_a.name!r}"})
    before = views()
    run = resolve_share(store, tok_a)
    rows.append({"kind": "valid token (control)", "outcome": "opened its own run" if run.id == run_a.id else "WRONG RUN",
                 "reads": views() - before, "message": f"opened {run.name!r}"})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="SQLAlchemy URL of an empty database (default: a fresh SQLite file)")
    args = ap.parse_args(argv)
    from tlcore.runs import RunStore

    folder = Path(tempfile.mkdtemp(prefix="tl-share-"))
    store = RunStore(args.db or f"sqlite:///{folder / 'runs.db'}", artifacts_root=folder / "runs")
    rows = campaign(store)
    print("| share link | outcome | reads | message |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['outcome']} | {r['reads']} | {r['message'].replace('|', '/')} |")
    hostile = rows[:-2]
    bad = [r for r in hostile if r["outcome"] != "refused" or r["reads"]]
    print(f"\n{len(hostile)} hostile links: {len(hostile) - len(bad)} refused with 0 reads, {len(bad)} not")
    return 1 if bad or any(r["outcome"] != "opened its own run" or r["reads"] != 1 for r in rows[-2:]) else 0


if __name__ == "__main__":
    sys.exit(main())
