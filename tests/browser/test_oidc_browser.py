"""Accounts end to end: users sign in through a real OpenID Connect provider (tests/oidc_provider.py, Authlib) in
headless Chromium, each in their own browser context, and see only their own runs and uploads.

The app runs with ``--secrets.files`` pointing at a secrets.toml written for this test (``[auth]`` aimed at the
provider, ``[transferlab] admins``), so nothing is written into the repository's ``.streamlit``.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from tests.browser.conftest import AppServer, open_page, screenshot, wait_idle
from tests.oidc_provider import OIDCProvider

USERS = {"alice": "alice@example.test", "bob": "bob@example.test", "carol": "carol@example.test"}
ADMIN = "carol"
MARKER = {"alice": "zebra-ledger", "bob": "quokka-harbor"}   # words only in that user's uploaded file


@pytest.fixture(scope="module")
def team(tmp_path_factory, browser):
    """The provider, the app logged in against it, and three runs: one each for alice and bob, one from before login
    was enabled (no owner)."""
    with OIDCProvider(USERS) as op:
        home = tmp_path_factory.mktemp("tlteam")
        secrets_file = home / "secrets.toml"
        server = AppServer(home, extra_args=("--secrets.files", str(secrets_file)))
        client_secret = secrets.token_urlsafe(24)
        op.add_client("transferlab", client_secret, [f"{server.url}/oauth2callback"])
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "{server.url}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "transferlab"\n'
            f'client_secret = "{client_secret}"\n'
            f'server_metadata_url = "{op.metadata_url}"\n\n'
            "[transferlab]\n"
            f'admins = ["{USERS[ADMIN]}"]\n')
        server.start()
        store = server.store()
        runs = {}
        for who, owner in (("alice", USERS["alice"]), ("bob", USERS["bob"]), ("legacy", None)):
            run = store.create_run({"modality": "text"}, f"{who} run", owner=owner, dataset="demo:sentiment")
            store.mark_done(run.id, {})
            runs[who] = run.id
        try:
            yield {"op": op, "server": server, "runs": runs, "uploads": {}}
        finally:
            server.stop()


def sign_in(browser, team, user: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(team["server"].url)
    page.get_by_text("Please sign in").wait_for()
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Sign in to the test provider").wait_for()   # the provider's own page
    assert page.url.startswith(team["op"].issuer)
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(team["server"].url)))
    page.get_by_text(f"Signed in as {USERS[user]}").wait_for()
    wait_idle(page)
    return ctx, page


def picker_options(page, key: str) -> list[str]:
    """The option labels of the selectbox with widget key ``key`` (opened, read, closed)."""
    page.locator(f".st-key-{key} button[aria-label='Open']").click()
    page.get_by_role("option").first.wait_for()
    texts = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def upload_set(page, team, user: str, tmp_path: Path) -> str:
    csv = tmp_path / f"{user}_reviews.csv"
    rows = ["text,label"] + [f"\"{MARKER[user]} great {i}\",pos\n\"{MARKER[user]} awful {i}\",neg" for i in range(6)]
    csv.write_text("\n".join(rows) + "\n")
    open_page(page, f"{team['server'].url}/data", "Data")
    page.get_by_text("Upload my data").click()
    wait_idle(page)
    page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(str(csv))
    page.get_by_role("heading", name=re.compile(f"Preview: {user}_reviews.csv")).wait_for()
    wait_idle(page)
    page.get_by_text("of your 10.00 GB quota").wait_for()
    ref = re.search(r"data=(upload(?:%3A|:)[0-9a-f]{16})", page.url).group(1).replace("%3A", ":")
    team["uploads"][user] = ref
    return ref


def test_two_users_see_only_their_own(team, browser, tmp_path):
    op, url, runs = team["op"], team["server"].url, team["runs"]
    alice_ctx, alice = sign_in(browser, team, "alice")
    bob_ctx, bob = sign_in(browser, team, "bob")
    # a real authorization-code flow with PKCE (S256) and a nonce, one per login
    assert [(a["user"], a["code_challenge_method"], a["nonce"]) for a in op.authorizations] == [
        ("alice", "S256", True), ("bob", "S256", True)]
    assert all(t["code_verifier"] for t in op.token_requests) and len(op.token_requests) == 2

    alice_ref = upload_set(alice, team, "alice", tmp_path)
    bob_ref = upload_set(bob, team, "bob", tmp_path)
    assert alice_ref != bob_ref

    # Runs: each sees their own run only (not the other's, not the ownerless one from before login)
    for name, page in (("alice", alice), ("bob", bob)):
        open_page(page, f"{url}/runs", "Runs")
        page.get_by_text("Selected run").wait_for()
        options = picker_options(page, "runs-run")
        assert len(options) == 1 and options[0].startswith(f"{name} run"), options
        screenshot(page, f"oidc-{name}-runs")
        open_page(page, f"{url}/compare", "Compare")
        options = picker_options(page, "cmp-run")
        assert len(options) == 1 and options[0].startswith(f"{name} run"), options
        open_page(page, f"{url}/finetune", "Fine-tune")
        data = picker_options(page, "ft-data")
        other = "bob" if name == "alice" else "alice"
        assert any(f"{name}_reviews.csv" in o for o in data), data
        assert not any(f"{other}_reviews.csv" in o for o in data), data

    # bob cannot open alice's (or the ownerless) run by id on any page, nor her upload set by reference
    for run_id in (runs["alice"], runs["legacy"]):
        for path in ("compare", "runs", "analyze", "share", "try_it", "finetune"):
            bob.goto(f"{url}/{path}?run={run_id}")
            wait_idle(bob)
            body = bob.locator('[data-testid="stMain"]').inner_text()
            assert "alice run" not in body and "legacy run" not in body, (path, body[:500])
    for path in ("data", "finetune", "diagnose"):
        bob.goto(f"{url}/{path}?data={alice_ref}")
        wait_idle(bob)
        body = bob.locator('[data-testid="stMain"]').inner_text()
        assert "alice_reviews" not in body and MARKER["alice"] not in body, (path, body[:500])
    # ... nor her file by guessing its name or path: no URL of the server serves uploads
    sha_dirs = [p for p in (team["server"].home / "uploads").iterdir() if (p / "alice_reviews.csv").exists()]
    assert len(sha_dirs) == 1
    guesses = [f"/uploads/{sha_dirs[0].name}/alice_reviews.csv", f"/app/static/{sha_dirs[0].name}/alice_reviews.csv",
               f"/media/{sha_dirs[0].name}/alice_reviews.csv", "/alice_reviews.csv",
               f"/data?data=upload:../sets/{alice_ref.split(':')[1]}"]
    for guess in guesses:
        resp = bob_ctx.request.get(url + guess)
        assert MARKER["alice"] not in resp.text(), guess

    # a share link of alice's run opens read-only for bob: that one run, no navigation, nothing else of hers
    open_page(alice, f"{url}/share", "Share")
    alice.get_by_role("button", name="Create link").click()
    alice.get_by_text("Copy it now").wait_for()
    link = alice.locator('[data-testid="stCode"]').inner_text().strip()
    assert "?share=" in link
    bob.goto(link)
    bob.get_by_role("heading", name="Shared run: alice run").wait_for()
    wait_idle(bob)
    bob.get_by_text("Read-only view shared from TransferLab").wait_for()
    assert bob.locator('[data-testid="stSidebarNav"]').count() == 0
    assert bob.locator('[data-testid="stFileUploader"]').count() == 0
    # and it does not make her run (or anything else of hers) bob's
    open_page(bob, f"{url}/runs", "Runs")
    assert [o.split(" · ")[0] for o in picker_options(bob, "runs-run")] == ["bob run"]
    alice_ctx.close()
    bob_ctx.close()


def test_admin_sees_everyone(team, browser):
    url = team["server"].url
    ctx, carol = sign_in(browser, team, ADMIN)
    carol.get_by_text("admin").first.wait_for()
    open_page(carol, f"{url}/runs", "Runs")
    names = {o.split(" · ")[0] for o in picker_options(carol, "runs-run")}
    assert names == {"alice run", "bob run", "legacy run"}
    screenshot(carol, "oidc-admin-runs")
    ctx.close()
