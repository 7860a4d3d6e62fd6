"""Accounts and isolation: who may see which run and upload set, the admin role, the upload quota, and that local
mode (no login) is unchanged. AppTest (no browser) with ``at.secrets["auth"]`` and ``at.user`` for a signed-in
user; direct calls for ``ui.datasets`` with the session's identity patched in. The real login flow is in
tests/browser/test_oidc_browser.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "tl",
        "client_secret": "s", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


@pytest.fixture
def home(app_home):
    return app_home


def app(page: str | None = None, user: str | None = None, *, login: bool = True, admins=(), **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if login:
        at.secrets["auth"] = AUTH
        at.secrets["transferlab"] = {"admins": list(admins)}
        at.user = {"is_logged_in": True, "email": user, "email_verified": True} if user else {"is_logged_in": False}
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def runs_by_owner():
    """A finished run each for alice and bob, and one from before login was enabled (owner None)."""
    from tlcore.runs import RunStore

    store = RunStore()
    out = {}
    for who, owner in (("alice", ALICE), ("bob", BOB), ("legacy", None)):
        run = store.create_run({"modality": "text"}, f"{who} run", owner=owner, dataset="demo:sentiment")
        store.mark_done(run.id, {})
        out[who] = run.id
    return store, out


def picker(at: AppTest, key: str) -> list[str]:
    box = at.selectbox(key=key)
    return [o.split(" · ")[0] for o in box.options]   # AppTest holds the formatted labels


def page_text(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info", "error", "warning")
             for e in getattr(at, kind)]
    parts += [str(o) for s in at.selectbox for o in s.options]
    return "\n".join(map(str, parts))


# ------------------------------------------------------------------ the rule itself

@pytest.mark.parametrize("owner,user,login,admin,expected", [
    ("a", None, False, False, True),      # local mode: everything, as before accounts existed
    (None, None, False, False, True),
    ("a", "a", True, False, True),        # a member: their own
    ("b", "a", True, False, False),       # ... not another's
    (None, "a", True, False, False),      # ... nor what was made before login was enabled
    ("b", "c", True, True, True),         # an admin: everything
    (None, "c", True, True, True),
    ("a", None, True, False, False),      # login configured, not signed in: nothing
    (None, None, True, False, False),
])
def test_may_see(owner, user, login, admin, expected):
    from ui.auth import may_see

    assert may_see(owner, user, login=login, admin=admin) is expected


@pytest.mark.parametrize("claims,trust,expected", [
    ({"email": ALICE, "email_verified": True, "sub": "1"}, False, ALICE),
    ({"email": ALICE, "email_verified": "true", "sub": "1"}, False, ALICE),     # some providers send a string
    ({"email": ALICE, "email_verified": False, "sub": "7", "iss": "https://idp.test"}, False,
     "sub:7 at https://idp.test"),                                             # unchecked: never someone's email
    ({"email": ALICE, "sub": "7"}, False, "sub:7"),                            # no claim at all: not vouched for
    ({"email": ALICE, "sub": "7"}, True, ALICE),                               # ... unless the admin trusts it
    ({"email_verified": True, "sub": "7"}, False, "sub:7"),
    ({"email": "", "sub": ""}, False, None),
])
def test_identity_takes_the_email_only_when_verified(claims, trust, expected):
    from ui.auth import identity

    assert identity(claims, trust_email=trust) == expected


def test_an_unverified_email_is_neither_its_owner_nor_an_admin(home):
    """Mallory's provider account claims alice's address (and the admin's) without verifying it."""
    runs_by_owner()
    for claimed, admins in ((ALICE, []), (CAROL, [CAROL])):
        at = AppTest.from_file(APP, default_timeout=60)
        at.secrets["auth"] = AUTH
        at.secrets["transferlab"] = {"admins": admins}
        at.user = {"is_logged_in": True, "email": claimed, "email_verified": False, "sub": "mallory"}
        at.run()
        account = [c.value for c in at.sidebar.caption]
        assert any("not verified" in c and "sub:mallory" in c and "admin" not in c for c in account), account
        at.switch_page("pages/runs.py").run()
        assert not at.exception, [e.value for e in at.exception]
        text = page_text(at)
        assert not any(f"{who} run" in text for who in ("alice", "bob", "legacy")), claimed


def test_owner_key_is_fixed_length_and_distinct():
    from ui.auth import owner_key

    keys = {owner_key(u) for u in (ALICE, BOB, "../../etc", "")}
    assert len(keys) == 4 and all(len(k) == 24 and k.isalnum() for k in keys)


# ------------------------------------------------------------------ runs through the pages

def test_member_sees_only_their_runs_on_every_list(home):
    _, ids = runs_by_owner()
    for page, key in (("pages/runs.py", "runs-run"), ("pages/compare.py", "cmp-run"), ("pages/share.py", "share-run")):
        at = app(page, ALICE)
        assert picker(at, key) == ["alice run"], page


@pytest.mark.parametrize("page", ["pages/compare.py", "pages/runs.py", "pages/share.py", "pages/analyze.py",
                                  "pages/try_it.py", "pages/finetune.py"])
def test_another_users_run_reads_as_not_found_by_id(home, page):
    _, ids = runs_by_owner()
    for target in ("alice", "legacy"):
        at = app(page, BOB, run=ids[target])
        text = page_text(at)
        assert f"{target} run" not in text, (page, target)


def test_get_run_and_visible_runs_follow_the_rule(home, monkeypatch):
    import ui.runs

    _, ids = runs_by_owner()

    def as_user(user, *, login=True, admin=False):
        monkeypatch.setattr(ui.runs, "login_configured", lambda: login)
        monkeypatch.setattr(ui.runs, "current_user", lambda: user)
        monkeypatch.setattr(ui.runs, "is_admin", lambda: admin)
        monkeypatch.setattr(ui.runs, "can_see", lambda owner: __import__("ui.auth").auth.may_see(
            owner, user, login=login, admin=admin))

    as_user(BOB)
    assert [r.name for r in ui.runs.visible_runs()] == ["bob run"]
    assert ui.runs.get_run(ids["alice"]) is None and ui.runs.get_run(ids["legacy"]) is None
    assert ui.runs.get_run(ids["bob"]).name == "bob run"
    as_user(None)   # login configured, nobody signed in
    assert ui.runs.visible_runs() == [] and ui.runs.get_run(ids["bob"]) is None
    as_user(CAROL, admin=True)
    assert {r.name for r in ui.runs.visible_runs()} == {"alice run", "bob run", "legacy run"}
    assert ui.runs.get_run(ids["legacy"]).name == "legacy run"
    as_user(None, login=False)   # local mode
    assert {r.name for r in ui.runs.visible_runs()} == {"alice run", "bob run", "legacy run"}
    assert ui.runs.get_run(ids["alice"]).name == "alice run"


def test_admin_sees_everyone_and_may_share_any_run(home):
    from tlcore.runs import create_share, revoke_share

    store, ids = runs_by_owner()
    at = app("pages/runs.py", CAROL, admins=[CAROL.upper()])   # admin emails compare case-insensitively
    assert sorted(picker(at, "runs-run")) == ["alice run", "bob run", "legacy run"]
    # (AppTest shows the sidebar of the first run only, so the account note is read on Home)
    assert any("admin" in c.value for c in app(None, CAROL, admins=[CAROL]).sidebar.caption)
    member = app("pages/runs.py", BOB, admins=[CAROL])
    assert picker(member, "runs-run") == ["bob run"]
    assert [c.value for c in app(None, BOB, admins=[CAROL]).sidebar.caption] == [f"Signed in as **{BOB}**"]
    with pytest.raises(PermissionError):
        create_share(store, ids["alice"], expires_in=timedelta(days=1), created_by=BOB)
    _, link = create_share(store, ids["alice"], expires_in=timedelta(days=1), created_by=CAROL, admin=True)
    with pytest.raises(PermissionError):
        revoke_share(store, link.id, by=BOB)
    assert revoke_share(store, link.id, by=CAROL, admin=True).state == "revoked"


def test_share_link_opens_one_run_read_only_for_another_user(home):
    from tlcore.runs import create_share

    store, ids = runs_by_owner()
    token, _ = create_share(store, ids["alice"], expires_in=timedelta(days=1), created_by=ALICE)
    at = app(None, BOB, share=token)
    assert at.title[0].value == "Shared run: alice run"
    assert not at.file_uploader and not at.selectbox


def test_login_configured_but_signed_out_shows_only_the_sign_in(home):
    runs_by_owner()
    at = app(None, None, run="x")
    assert any("Please sign in" in i.value for i in at.info)
    assert [b.label for b in at.button] == ["Log in"]
    assert "alice run" not in page_text(at) and "legacy run" not in page_text(at)


def test_local_mode_unchanged_everything_visible(home):
    _, ids = runs_by_owner()
    at = app("pages/runs.py", login=False)
    assert sorted(picker(at, "runs-run")) == ["alice run", "bob run", "legacy run"]
    assert any("Single-user local mode" in c.value for c in app(None, login=False).sidebar.caption)
    opened = app("pages/compare.py", login=False, run=ids["alice"])
    assert opened.selectbox(key="cmp-run").value == ids["alice"]


# ------------------------------------------------------------------ upload sets and the quota

@pytest.fixture
def as_user(monkeypatch):
    """Make ``ui.datasets`` see a given session identity: ``as_user(email, admin=False)``; ``as_user(None, login=False)``
    for local mode."""
    import ui.datasets

    names = ("login_configured", "current_user", "is_admin")
    real = {n: getattr(ui.datasets, n) for n in names}

    def set_user(user, *, login=True, admin=False):
        monkeypatch.setattr(ui.datasets, "login_configured", lambda: login)
        monkeypatch.setattr(ui.datasets, "current_user", lambda: user)
        monkeypatch.setattr(ui.datasets, "is_admin", lambda: admin)

    def restore():   # before an AppTest: it runs the app in this process, and must read its own session
        for n in names:
            monkeypatch.setattr(ui.datasets, n, real[n])

    set_user.restore = restore
    return set_user


def test_upload_sets_belong_to_their_owner(home, as_user):
    from ui import datasets as ds

    as_user(None, login=False)
    legacy = ds.save_upload_set("text", {"target": str(ds.save_upload("old.csv", b"text,label\nold,a\n"))})
    as_user(ALICE)
    data = b"text,label\nzebra,a\nledger,b\n"
    a_ref = ds.save_upload_set("text", {"target": str(ds.save_upload("a.csv", data))}, "alice's")
    assert [c.ref for c in ds.upload_sets()] == [a_ref] and ds.resolve(a_ref).owner == ALICE
    assert ds.resolve(legacy) is None           # made before login: no member's
    as_user(BOB)
    assert ds.upload_sets() == [] and ds.resolve(a_ref) is None   # reads exactly like a set that does not exist
    assert ds.resolve(a_ref.replace("upload:", "upload:../")) is None and ds.resolve("upload:" + "0" * 16) is None
    assert ds.delete_upload_set(a_ref) is False
    # the same bytes give bob the same id, but in his own folder: removing his leaves alice's
    b_ref = ds.save_upload_set("text", {"target": str(ds.save_upload("a.csv", data))}, "bob's")
    assert b_ref == a_ref and ds.resolve(b_ref).name == "bob's"
    assert ds.delete_upload_set(b_ref) is True and ds.resolve(b_ref) is None
    as_user(ALICE)
    assert ds.resolve(a_ref).name == "alice's"
    as_user(CAROL, admin=True)
    assert {c.ref for c in ds.upload_sets()} == {a_ref, legacy}
    assert "· alice@example.test" in dict(ds.all_choices())[a_ref]
    as_user(None, login=True)   # signed out
    assert ds.upload_sets() == [] and ds.resolve(a_ref) is None
    with pytest.raises(PermissionError):
        ds.save_upload_set("text", {"target": "x.csv"})
    as_user(None, login=False)   # local mode: everything, as before
    assert {c.ref for c in ds.upload_sets()} == {a_ref, legacy}


def test_upload_quota_counts_the_users_own_sets(home, as_user, monkeypatch):
    from ui import datasets as ds

    monkeypatch.setenv("TRANSFERLAB_USER_QUOTA_GB", "0.000002")   # 2000 bytes
    as_user(ALICE)
    first = ds.save_upload("a.csv", b"x" * 1500)
    ds.save_upload_set("text", {"target": str(first)})
    assert ds.usage_bytes(ALICE) == 1500
    assert ds.save_upload("a.csv", b"x" * 1500) == first   # the same file again: nothing new
    with pytest.raises(ds.QuotaExceeded, match=r"needs 1\.0 kB and you already use 1\.5 kB of your 2\.0 kB quota"):
        ds.save_upload("b.csv", b"y" * 1000)
    assert not list(ds.uploads_dir().glob("*/b.csv"))                        # refused before anything was written
    # files of the same batch count before their manifest exists
    as_user(BOB)
    batch = [ds.save_upload("t.csv", b"t" * 1200)]
    with pytest.raises(ds.QuotaExceeded, match="already use 1.2 kB"):
        ds.save_upload("s.csv", b"s" * 900, also=batch)
    as_user(None, login=False)   # local mode has no quota
    ds.save_upload("big.csv", b"z" * 5000)


def test_data_page_refuses_another_users_upload_reference(home, as_user):
    from ui import datasets as ds

    as_user(ALICE)
    ref = ds.save_upload_set("text", {"target": str(ds.save_upload("secret_alice.csv", b"text,label\nzebra,a\n"))})
    as_user.restore()
    at = app("pages/data.py", BOB, data=ref)
    assert "secret_alice" not in page_text(at) and not at.subheader
    mine = app("pages/data.py", ALICE, data=ref)
    assert any("secret_alice" in s.value for s in mine.subheader)
    assert any("quota" in c.value for c in mine.caption)


def test_data_page_upload_is_stored_for_the_signed_in_user(home):
    at = app("pages/data.py", ALICE)
    at.radio(key="data-mode").set_value("Upload my data").run()
    at.file_uploader(key="upload-target").upload("r.csv", b"text,label\ngood,pos\nbad,neg\ngreat,pos\nawful,neg\n",
                                                "text/csv").run()
    assert not at.exception
    ref = at.query_params["data"]
    ref = ref[0] if isinstance(ref, list) else ref
    from ui.auth import owner_key

    assert (home.path / "uploads" / "sets" / "users" / owner_key(ALICE) / f"{ref.split(':')[1]}.json").is_file()
    assert not list((home.path / "uploads" / "sets").glob("*.json"))   # nothing in the shared (local-mode) folder


# ------------------------------------------------------------------ no user text as raw HTML

def test_html_builders_escape_user_text():
    from ui.media import types_legend_html
    from ui.spans import sentence_html, tagged_html
    from ui.try_it import entities_html, transcript_diff_html

    evil = '<img src=x onerror="alert(1)">'
    outputs = [tagged_html([evil, "x"], [f"B-{evil}", "O"]),
               sentence_html({"tokens": [evil], "gold": ["B-PER"], "before": ["O"], "after": ["B-PER"], "gain": 1}),
               types_legend_html([evil]),
               entities_html({"tokens": [evil, "y"], "spans": [{"start": 0, "end": 1, "type": evil}]}),
               *transcript_diff_html(evil, evil + " <script>alert(2)</script>")]
    for out in outputs:
        assert "<img" not in out and "<script" not in out, out
        assert "&lt;" in out


def test_members_may_rank_hub_ids_but_not_server_folders(monkeypatch, tmp_path):
    import ui.auth

    folder = tmp_path / "org" / "model"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    typed = ["openai/whisper-base.en", "/etc", "../x", "~/models/w", "org/model", "plainname"]
    monkeypatch.setattr(ui.auth, "login_configured", lambda: True)
    monkeypatch.setattr(ui.auth, "is_admin", lambda: False)
    allowed, refused = ui.auth.split_server_paths(typed)
    assert allowed == ["openai/whisper-base.en"]          # "org/model" exists here as a folder: refused too
    assert refused == ["/etc", "../x", "~/models/w", "org/model", "plainname"]
    monkeypatch.setattr(ui.auth, "is_admin", lambda: True)
    assert ui.auth.split_server_paths(typed) == (typed, [])
    monkeypatch.setattr(ui.auth, "login_configured", lambda: False)
    monkeypatch.setattr(ui.auth, "is_admin", lambda: False)
    assert ui.auth.split_server_paths(typed) == (typed, [])
