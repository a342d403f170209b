"""Token verification against a real (local) OpenID provider and the development issuer.

The provider is a small Starlette app served by uvicorn on 127.0.0.1 in a background
thread, so discovery, JWKS caching and key rotation go over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import stat
import threading
import time

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from registry.access.identity import (
    DevelopmentIssuer,
    InvalidToken,
    OIDCKeySource,
    TokenVerifier,
    build_verifier,
    map_claims,
)
from registry.access.principal import Principal
from registry.config import Settings

AUDIENCE = "registry"


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def make_settings(tmp_path, **overrides) -> Settings:
    """Explicit values so REGISTRY_* variables in the environment cannot leak into tests."""
    values = dict(
        env="development",
        data_dir=tmp_path,
        oidc_issuer=None,
        oidc_audience=AUDIENCE,
        oidc_algorithms=["RS256", "PS256", "ES256", "EdDSA"],
        oidc_leeway_seconds=30,
        jwks_refresh_interval_seconds=60,
        claim_subject="sub",
        claim_name="name",
        claim_agency="agency",
        claim_roles="roles",
        claim_unit="unit",
        host="127.0.0.1",
        port=8000,
        public_url=None,
    )
    values.update(overrides)
    return Settings(**values)


class Provider:
    """A minimal OpenID provider: discovery plus a JWKS that tests can rotate."""

    def __init__(self) -> None:
        self.issuer = ""
        self.discovery_issuer: str | None = None  # override to simulate a misconfiguration
        self.jwks_requests = 0
        self._lock = threading.Lock()
        self.keys: list[RSAKey] = []
        self.reset()

    def reset(self) -> None:
        self.discovery_issuer = None
        self.keys = [self.new_key("key-1")]
        with self._lock:
            self.jwks_requests = 0

    @staticmethod
    def new_key(kid: str) -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})

    def rotate(self, kid: str) -> RSAKey:
        """Publish a new key alongside the current one, as providers do during rotation."""
        key = self.new_key(kid)
        self.keys = [key, *self.keys]
        return key

    @property
    def signing_key(self) -> RSAKey:
        return self.keys[0]

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-123",
            "name": "Alex Example",
            "agency": "CUTA",
            "unit": "north",
            "realm_access": {"roles": ["analyst", "offline_access", "dpo"]},
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict | None = None, key: RSAKey | ECKey | None = None, kid: str | None = None, alg="RS256"):
        key = key or self.signing_key
        header = {"alg": alg, "kid": kid or key.kid}
        return jwt.encode(header, claims if claims is not None else self.claims(), key, algorithms=[alg])

    # --- the ASGI app
    async def _discovery(self, request):
        return JSONResponse({"issuer": self.discovery_issuer or self.issuer, "jwks_uri": self.issuer + "/jwks.json"})

    async def _jwks(self, request):
        with self._lock:
            self.jwks_requests += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.keys]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/realms/test/.well-known/openid-configuration", self._discovery),
                Route("/realms/test/jwks.json", self._jwks),
            ]
        )


@pytest.fixture(scope="module")
def provider_server():
    """uvicorn in a background thread on a pre-bound free port (no port race)."""
    provider = Provider()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    provider.issuer = f"http://127.0.0.1:{port}/realms/test"
    server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "provider did not start"
        time.sleep(0.01)
    yield provider
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def provider(provider_server):
    provider_server.reset()
    return provider_server


@pytest.fixture
async def http_client():
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def oidc_settings(tmp_path, provider):
    return make_settings(tmp_path, oidc_issuer=provider.issuer, claim_roles="realm_access.roles")


@pytest.fixture
async def verifier(oidc_settings, http_client) -> TokenVerifier:
    verifier, dev = await build_verifier(oidc_settings, http_client)
    assert dev is None
    return verifier


async def assert_rejected(verifier: TokenVerifier, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(token)
    assert str(info.value) == reason


# --------------------------------------------------------------------------- OIDC provider


async def test_valid_token_maps_claims_to_principal_with_dotted_roles_path(provider, verifier):
    # Given a token from the provider with Keycloak-style realm_access.roles
    token = provider.sign()

    # When it is verified
    principal = await verifier.verify(token)

    # Then the claims map to a Principal; roles unknown to the registry are dropped
    assert principal == Principal(
        id="user-123",
        name="Alex Example",
        agency="CUTA",
        roles=frozenset({"analyst", "dpo"}),
        unit="north",
    )


async def test_service_client_token_maps_like_a_user_with_name_defaulting_to_subject(provider, verifier):
    # Given a client-credentials token: no name, no unit, an audience list
    claims = provider.claims(sub="svc-matcher", name=None, unit=None, aud=["account", AUDIENCE])
    claims["realm_access"] = {"roles": ["partner"]}

    # When it is verified
    principal = await verifier.verify(provider.sign(claims))

    # Then it is a principal like a user, named by its subject
    assert principal == Principal(id="svc-matcher", name="svc-matcher", agency="CUTA", roles=frozenset({"partner"}))


async def test_expired_token_is_rejected(provider, verifier):
    # Given a token that expired well beyond the leeway
    now = int(time.time())
    token = provider.sign(provider.claims(iat=now - 600, nbf=now - 600, exp=now - 120))

    # When / Then
    await assert_rejected(verifier, token, "token expired")


async def test_token_within_leeway_after_expiry_is_accepted(provider, verifier):
    # Given a token that expired 5 seconds ago (leeway is 30)
    now = int(time.time())
    token = provider.sign(provider.claims(exp=now - 5))

    # When / Then
    assert (await verifier.verify(token)).id == "user-123"


async def test_token_not_yet_valid_is_rejected(provider, verifier):
    # Given a token valid only from 10 minutes from now
    now = int(time.time())
    token = provider.sign(provider.claims(nbf=now + 600, exp=now + 900))

    # When / Then
    await assert_rejected(verifier, token, "token not yet valid")


async def test_token_without_exp_is_rejected(provider, verifier):
    # Given a token without expiry
    token = provider.sign(provider.claims(exp=None))

    # When / Then
    await assert_rejected(verifier, token, "missing claim: exp")


async def test_token_for_another_audience_is_rejected(provider, verifier):
    # Given a token meant for another API
    token = provider.sign(provider.claims(aud=["account", "other-api"]))

    # When / Then
    await assert_rejected(verifier, token, "wrong audience")


async def test_token_from_another_issuer_is_rejected(provider, verifier):
    # Given a correctly signed token naming another issuer
    token = provider.sign(provider.claims(iss="https://evil.example/realms/test"))

    # When / Then
    await assert_rejected(verifier, token, "wrong issuer")


async def test_token_signed_by_another_key_with_same_kid_is_rejected(provider, verifier):
    # Given an attacker's key that claims the provider's kid
    forged_key = Provider.new_key(provider.signing_key.kid)
    token = provider.sign(key=forged_key)

    # When / Then
    await assert_rejected(verifier, token, "bad signature")


async def test_tampered_payload_is_rejected(provider, verifier):
    # Given a valid token whose payload is swapped for one granting admin
    header, _, signature = provider.sign().split(".")
    claims = provider.claims()
    claims["realm_access"] = {"roles": ["admin"]}
    token = f"{header}.{b64json(claims)}.{signature}"

    # When / Then
    await assert_rejected(verifier, token, "bad signature")


async def test_unsigned_alg_none_token_is_rejected(provider, verifier):
    # Given an unsigned token built by hand
    token = f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(provider.claims())}."

    # When / Then
    await assert_rejected(verifier, token, "algorithm not allowed")


async def test_hmac_token_using_the_public_key_as_secret_is_rejected(provider, verifier):
    # Given the classic key-confusion attack: HS256 with the public key PEM as the secret
    secret = provider.signing_key.as_pem(private=False)
    header = b64json({"alg": "HS256", "typ": "JWT", "kid": provider.signing_key.kid})
    payload = b64json(provider.claims())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64url(signature)}"

    # When / Then
    await assert_rejected(verifier, token, "algorithm not allowed")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c", "....", "é.é.é"])
async def test_malformed_token_is_rejected(verifier, token):
    # Given garbage / When / Then
    await assert_rejected(verifier, token, "malformed token")


async def test_token_with_valid_signature_but_no_subject_is_rejected(provider, verifier):
    # Given a token without sub
    token = provider.sign(provider.claims(sub=None))

    # When / Then
    await assert_rejected(verifier, token, "missing subject")


async def test_rotated_key_is_fetched_once_then_accepted(provider, verifier):
    # Given a verifier that loaded the JWKS once at startup
    assert provider.jwks_requests == 1
    # And the provider then rotates to a new key
    provider.rotate("key-2")

    # When a token signed with the new key arrives
    principal = await verifier.verify(provider.sign(kid="key-2"))

    # Then the verifier fetched the JWKS exactly once more and accepted it
    assert principal.id == "user-123"
    assert provider.jwks_requests == 2
    # And known keys are served from cache afterwards
    await verifier.verify(provider.sign(kid="key-2"))
    await verifier.verify(provider.sign(key=provider.keys[1]))
    assert provider.jwks_requests == 2


async def test_second_unknown_kid_within_interval_does_not_refetch(provider, verifier):
    # Given one unknown kid already caused a re-fetch
    bogus = Provider.new_key("bogus-1")
    await assert_rejected(verifier, provider.sign(key=bogus), "unknown signing key")
    assert provider.jwks_requests == 2

    # When more unknown kids arrive within the refresh interval (even a legitimately rotated one)
    provider.rotate("key-3")
    await assert_rejected(verifier, provider.sign(key=Provider.new_key("bogus-2")), "unknown signing key")
    await assert_rejected(verifier, provider.sign(kid="key-3"), "unknown signing key")

    # Then the provider was not asked again
    assert provider.jwks_requests == 2


async def test_unknown_kid_after_interval_refetches_again(provider, oidc_settings, http_client):
    # Given a key source with a controllable clock
    now = [1000.0]
    source = OIDCKeySource(provider.issuer, http_client, 60, clock=lambda: now[0])
    await source.refresh()
    verifier = TokenVerifier(oidc_settings, key_source=source)
    await assert_rejected(verifier, provider.sign(key=Provider.new_key("bogus")), "unknown signing key")
    assert provider.jwks_requests == 2

    # When the interval has passed and the provider has rotated
    now[0] += 61
    provider.rotate("key-4")

    # Then the next unknown kid triggers one more fetch and the new key works
    assert (await verifier.verify(provider.sign(kid="key-4"))).id == "user-123"
    assert provider.jwks_requests == 3


async def test_many_concurrent_unknown_kids_cause_a_single_fetch(provider, verifier):
    # Given a burst of tokens with different bogus kids
    tokens = [provider.sign(key=Provider.new_key(f"bogus-{i}")) for i in range(3)] * 10

    # When they are verified concurrently
    import asyncio

    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)

    # Then all are rejected and the provider saw one re-fetch
    assert all(isinstance(r, InvalidToken) for r in results)
    assert provider.jwks_requests == 2


async def test_key_withdrawn_by_provider_stops_working_after_max_age(provider, oidc_settings, http_client):
    # Given a cached key
    now = [0.0]
    source = OIDCKeySource(provider.issuer, http_client, 60, max_age=3600, clock=lambda: now[0])
    await source.refresh()
    verifier = TokenVerifier(oidc_settings, key_source=source)
    old_token = provider.sign()
    assert (await verifier.verify(old_token)).id == "user-123"

    # When the provider withdraws it and the cache ages out
    provider.keys = [Provider.new_key("key-new")]
    now[0] += 3601

    # Then tokens signed with the withdrawn key are refused
    await assert_rejected(verifier, old_token, "unknown signing key")


async def test_discovery_naming_another_issuer_refuses_to_start(provider, oidc_settings, http_client):
    # Given a discovery document that names a different issuer
    provider.discovery_issuer = "https://evil.example/realms/test"

    # When / Then
    with pytest.raises(RuntimeError, match="issuer"):
        await build_verifier(oidc_settings, http_client)


async def test_hmac_in_configured_algorithms_is_still_refused(provider, tmp_path, http_client):
    # Given a misconfiguration that allow-lists HS256 and none
    settings = make_settings(tmp_path, oidc_issuer=provider.issuer, oidc_algorithms=["HS256", "none", "RS256"])
    verifier, _ = await build_verifier(settings, http_client)
    header = b64json({"alg": "HS256", "kid": "key-1"})
    payload = b64json(provider.claims())
    sig = hmac.new(b"secret", f"{header}.{payload}".encode(), hashlib.sha256).digest()

    # When / Then
    await assert_rejected(verifier, f"{header}.{payload}.{b64url(sig)}", "algorithm not allowed")
    assert (await verifier.verify(provider.sign())).id == "user-123"


# --------------------------------------------------------------------------- claim mapping


def test_roles_as_space_or_comma_separated_string_are_mapped(tmp_path):
    # Given roles as a string, mixed separators, with an unknown role
    settings = make_settings(tmp_path)
    claims = {"sub": "s1", "roles": "analyst, caseworker  superuser,dpo"}

    # When
    principal = map_claims(claims, settings)

    # Then
    assert principal.roles == frozenset({"analyst", "caseworker", "dpo"})
    assert principal.name == "s1" and principal.agency is None and principal.unit is None


def test_claim_names_with_dots_are_found_literally_before_as_paths(tmp_path):
    # Given a namespaced claim name that itself contains dots
    settings = make_settings(tmp_path, claim_roles="https://registry.example/roles", claim_agency="org.agency")
    claims = {"sub": "s1", "https://registry.example/roles": ["admin"], "org": {"agency": "CUTA"}}

    # When
    principal = map_claims(claims, settings)

    # Then
    assert principal.roles == frozenset({"admin"})
    assert principal.agency == "CUTA"


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": 42}])
def test_missing_or_invalid_subject_is_refused(tmp_path, claims):
    with pytest.raises(InvalidToken, match="missing subject"):
        map_claims(claims, make_settings(tmp_path))


# --------------------------------------------------------------------------- development issuer


def test_dev_issuer_key_persists_across_instances(tmp_path):
    # Given a development issuer created in an empty data dir
    settings = make_settings(tmp_path)
    first = DevelopmentIssuer(settings)
    key_file = tmp_path / "dev-issuer" / "signing-key.json"

    # When another instance starts on the same data dir
    second = DevelopmentIssuer(settings)

    # Then it reuses the same key, stored private to the owner
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.kid == second.kid
    assert first.jwks() == second.jwks()


async def test_dev_token_round_trips_through_verifier(tmp_path, http_client):
    # Given the verifier built without an issuer configured
    settings = make_settings(tmp_path, public_url="http://localhost:9000/")
    verifier, dev = await build_verifier(settings, http_client)
    assert isinstance(dev, DevelopmentIssuer)

    # When a dev token is issued, also from a restarted issuer
    token = DevelopmentIssuer(settings).issue(role="analyst", agency="CUTA")
    principal = await verifier.verify(token)

    # Then it maps like any other token, with a deterministic subject
    assert principal == Principal(
        id="dev:analyst:CUTA", name="dev:analyst:CUTA", agency="CUTA", roles=frozenset({"analyst"})
    )
    assert jwt.decode(token, dev._public_key).claims["iss"] == "http://localhost:9000/dev-issuer"


async def test_dev_token_follows_configured_claim_paths(tmp_path, http_client):
    # Given a dotted roles mapping
    settings = make_settings(tmp_path, claim_roles="realm_access.roles")
    verifier, dev = await build_verifier(settings, http_client)

    # When
    token = dev.issue(role=["caseworker", "referral_officer"], agency="YWA", unit="east", name="Sam")
    principal = await verifier.verify(token)

    # Then
    assert principal.roles == frozenset({"caseworker", "referral_officer"})
    assert (principal.name, principal.agency, principal.unit) == ("Sam", "YWA", "east")
    assert principal.id == "dev:caseworker+referral_officer:YWA:east:Sam"


async def test_expired_dev_token_and_foreign_dev_key_are_rejected(tmp_path, http_client):
    # Given two data dirs, i.e. two different dev keys
    settings = make_settings(tmp_path / "a")
    verifier, dev = await build_verifier(settings, http_client)
    other = DevelopmentIssuer(make_settings(tmp_path / "b"))

    # When / Then
    await assert_rejected(verifier, other.issue(role="admin", agency="CUTA"), "unknown signing key")
    expired = dev.issue(role="admin", agency="CUTA", ttl_seconds=1)
    verifier._claims_registry._now = lambda: int(time.time()) + 120
    await assert_rejected(verifier, expired, "token expired")


def test_dev_issuer_publishes_only_public_keys_and_discovery(tmp_path):
    # Given
    dev = DevelopmentIssuer(make_settings(tmp_path))

    # When
    jwks, discovery = dev.jwks(), dev.discovery()

    # Then
    assert [set(k) - {"kid", "use", "alg"} for k in jwks["keys"]] == [{"kty", "crv", "x", "y"}]
    assert discovery["issuer"] == "http://127.0.0.1:8000/dev-issuer"
    assert discovery["jwks_uri"] == "http://127.0.0.1:8000/dev-issuer/jwks.json"
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]


def test_dev_issuer_rejects_unknown_role(tmp_path):
    with pytest.raises(ValueError, match="role"):
        DevelopmentIssuer(make_settings(tmp_path)).issue(role="superuser", agency="CUTA")


async def test_dev_issuer_refuses_production(tmp_path, http_client):
    # Given production settings without an issuer
    settings = make_settings(tmp_path, env="production")

    # When / Then: neither the issuer nor the factory will run
    with pytest.raises(RuntimeError, match="production"):
        DevelopmentIssuer(settings)
    with pytest.raises(RuntimeError, match="production"):
        await build_verifier(settings, http_client)
    assert not (tmp_path / "dev-issuer").exists()


def test_dev_issuer_warns_loudly_once_without_token_content(tmp_path, monkeypatch, caplog):
    # Given a fresh process state
    import registry.access.identity as identity

    monkeypatch.setattr(identity, "_dev_warning_logged", False)

    # When two issuers start and a token is issued
    with caplog.at_level("WARNING", logger="registry.access.identity"):
        DevelopmentIssuer(make_settings(tmp_path))
        token = DevelopmentIssuer(make_settings(tmp_path)).issue(role="analyst", agency="CUTA")

    # Then exactly one warning says it is a development issuer, and no token is logged
    warnings = [r for r in caplog.records if "DEVELOPMENT TOKEN ISSUER" in r.getMessage()]
    assert len(warnings) == 1
    assert token not in caplog.text and token.split(".")[1] not in caplog.text


async def test_a_remembered_token_is_refused_once_its_key_is_rotated_away(provider, oidc_settings, http_client):
    # Given a token verified once (and remembered), signed with the provider's current key
    source = OIDCKeySource(provider.issuer, http_client, 0)
    await source.refresh()
    verifier = TokenVerifier(oidc_settings, key_source=source)
    token = provider.sign()
    assert (await verifier.verify(token)).id == "user-123"
    # When the provider replaces the key under the same kid and the verifier learns of it
    provider.keys = [Provider.new_key("key-1")]
    await source.refresh()
    # Then the remembered token is checked again, and its old signature refused
    await assert_rejected(verifier, token, "bad signature")
