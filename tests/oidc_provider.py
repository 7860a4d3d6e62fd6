"""A small, real OpenID Connect provider for tests, built on Authlib's server side and Flask.

What a relying party (Streamlit's ``st.login``, an Authlib client with ``server_metadata_url``) sees is a
standard provider: the discovery document at ``/.well-known/openid-configuration``, the authorization-code
flow with PKCE (S256) and ``nonce``, an ``id_token`` signed RS256 with a fresh key published at ``/jwks``, a
token endpoint taking ``client_secret_basic`` / ``client_secret_post``, and ``/userinfo`` for bearer tokens.
All protocol checks and the token signing are Authlib's (``authlib.oauth2``, ``authlib.oidc.core``; keys from
``joserfc``, the JOSE library Authlib signs with); this file only stores codes and tokens in memory and draws a
login form that takes a user name (no password: it is a test).

    with OIDCProvider({"alice": "alice@example.test"}) as op:
        op.add_client("app", "secret", ["http://127.0.0.1:8501/oauth2callback"])
        op.metadata_url    # -> [auth] server_metadata_url
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from authlib.oidc.discovery import OpenIDProviderMetadata
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CODE_TTL_S = 120
TOKEN_TTL_S = 3600


@dataclass(frozen=True)
class User:
    sub: str
    name: str
    email: str


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scope: str = "openid email profile"
    id_token_signed_response_alg: str = "RS256"
    client_metadata: dict = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris   # exact match, as OIDC requires

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(self.client_secret.encode(), (client_secret or "").encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: Optional[str]
    code_challenge: Optional[str]
    code_challenge_method: Optional[str]
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> Optional[str]:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def is_expired(self) -> bool:
        return time.time() > self.auth_time + CODE_TTL_S


@dataclass
class Token(TokenMixin):
    access_token: str
    client: Client
    scope: str
    user: User
    issued_at: float = field(default_factory=time.time)
    expires_in: int = TOKEN_TTL_S

    def check_client(self, client) -> bool:
        return client.get_client_id() == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> Client:
        return self.client


def _claims(user: User, scope: str) -> UserInfo:
    scopes = set((scope or "").split())
    info = UserInfo(sub=user.sub)
    if "email" in scopes:
        info.update(email=user.email, email_verified=True)
    if "profile" in scopes:
        info.update(name=user.name, preferred_username=user.sub)
    return info


LOGIN_FORM = """<!doctype html><title>Test OpenID provider: sign in</title>
<h1>Sign in to the test provider</h1>
<p>{error}</p>
<form method="post">
  <label>User name <input name="username" autofocus></label>
  <button type="submit">Sign in</button>
</form>"""


class OIDCProvider:
    """The provider, served on ``127.0.0.1:<free port>`` in a background thread while the context is open.

    ``users`` maps a user name (what the login form takes) to an email. ``authorizations`` records each code
    issued (user, PKCE method, nonce present), ``token_requests`` each token exchange (whether it carried a
    ``code_verifier``), so a test can check what the relying party really did.
    """

    def __init__(self, users: dict[str, str]):
        self.users = {name: User(sub=name, name=name.capitalize(), email=email) for name, email in users.items()}
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"},
                                       private=True)
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, Token] = {}
        self.authorizations: list[dict] = []
        self.token_requests: list[dict] = []
        self.issuer = ""
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self.app = self._build_app()

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> OIDCProvider:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def add_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> Client:
        client = Client(client_id, client_secret, list(redirect_uris))
        self.clients[client_id] = client
        return client

    # ---------------------------------------------------------------- the Authlib server
    def metadata(self) -> dict:
        meta = OpenIDProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=f"{self.issuer}/authorize",
            token_endpoint=f"{self.issuer}/token",
            userinfo_endpoint=f"{self.issuer}/userinfo",
            jwks_uri=f"{self.issuer}/jwks",
            response_types_supported=["code"],
            grant_types_supported=["authorization_code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=["openid", "email", "profile"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported=["S256"],
            claims_supported=["sub", "email", "email_verified", "name", "preferred_username"],
        )
        meta.validate()
        return dict(meta)

    def _build_app(self) -> Flask:
        provider = self
        app = Flask("oidc_provider")
        app.config["SESSION_COOKIE_NAME"] = "oidc_test_provider"   # never clashes with the app's cookies

        def save_token(token: dict, req) -> None:
            provider.tokens[token["access_token"]] = Token(token["access_token"], req.client, token.get("scope", ""),
                                                           req.user)

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, req) -> AuthCode:
                data = req.payload.data
                item = AuthCode(code=code, client_id=req.client.client_id, redirect_uri=req.payload.redirect_uri,
                                scope=req.payload.scope, user=req.user, nonce=data.get("nonce"),
                                code_challenge=data.get("code_challenge"),
                                code_challenge_method=data.get("code_challenge_method"))
                provider.codes[code] = item
                provider.authorizations.append({"user": req.user.sub, "client_id": item.client_id,
                                                "code_challenge_method": item.code_challenge_method,
                                                "nonce": bool(item.nonce), "scope": item.scope})
                return item

            def query_authorization_code(self, code: str, client: Client) -> Optional[AuthCode]:
                provider.token_requests.append({"code_verifier": bool(self.request.form.get("code_verifier")),
                                                "client_id": client.client_id})
                item = provider.codes.get(code)
                if item is not None and item.client_id == client.client_id and not item.is_expired():
                    return item
                return None

            def delete_authorization_code(self, authorization_code: AuthCode) -> None:
                provider.codes.pop(authorization_code.code, None)   # one use only

            def authenticate_user(self, authorization_code: AuthCode) -> User:
                return authorization_code.user

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce: str, req) -> bool:
                return any(c.nonce == nonce and c.client_id == req.payload.client_id for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_claims(self, client: Client) -> dict:
                return {"iss": provider.issuer, "aud": [client.client_id]}

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return _claims(user, scope)

        class Bearer(BearerTokenValidator):
            def authenticate_token(self, token_string: str) -> Optional[Token]:
                return provider.tokens.get(token_string)

        protector = ResourceProtector()
        protector.register_token_validator(Bearer())

        class UserInfoView(UserInfoEndpoint):
            def get_issuer(self) -> str:
                return provider.issuer

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return _claims(user, scope)

            def resolve_private_key(self) -> RSAKey:
                return provider.key

        server.register_grant(CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)])
        server.register_endpoint(UserInfoView(resource_protector=protector))

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(provider.metadata())

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            user = None
            error = ""
            if request.method == "POST":
                user = provider.users.get(request.form.get("username", "").strip().lower())
                error = "" if user else "Unknown user: try alice or bob."
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as exc:
                return f"authorization request refused: {html.escape(exc.error or '')}", 400
            if user is None:
                return LOGIN_FORM.format(error=html.escape(error))
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def issue_token():
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            return server.create_endpoint_response("userinfo")

        return app
