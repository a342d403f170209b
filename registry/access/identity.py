"""Identity: turn a bearer token into a Principal (DESIGN section 4).

The registry is an OAuth 2 resource server. Tokens come from the configured OpenID
provider (keys found by discovery, cached, re-fetched on an unknown `kid` at most once
per interval) or, in development only, from a built-in issuer whose key lives in the
data directory. Every failure is an `InvalidToken` with a short reason that is safe to
log and to return: no token text, claims or personal data ever go into messages or logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from joserfc import jws, jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, JWKRegistry, Key
from joserfc.jws import JWSRegistry

from registry.access.principal import ROLES, Principal

if TYPE_CHECKING:
    from registry.config import Settings

__all__ = [
    "InvalidToken",
    "KeySourceError",
    "IssuerMismatch",
    "map_claims",
    "DevelopmentIssuer",
    "OIDCKeySource",
    "TokenVerifier",
    "build_verifier",
]

log = logging.getLogger(__name__)

_DEV_ALG = "ES256"
_KNOWN_ROLES = frozenset(ROLES)
_ROLE_SPLIT = re.compile(r"[\s,]+")
_HTTP_TIMEOUT = httpx.Timeout(10.0)
# Cached keys are re-checked against the provider at least this often, so a key the
# provider withdraws (e.g. after compromise) stops being accepted without a restart.
_JWKS_MAX_AGE_SECONDS = 3600.0


class InvalidToken(Exception):
    """The bearer token cannot be trusted. The message is a short, non-sensitive reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class KeySourceError(Exception):
    """The identity provider's discovery document or key set could not be obtained."""


class IssuerMismatch(KeySourceError):
    """Discovery names a different issuer than configured: a configuration error, not transient."""


# --------------------------------------------------------------------------- claims


def _claim(claims: dict[str, Any], path: str) -> Any:
    """Look a claim up by name, else by dotted path (`realm_access.roles`).

    The literal name wins so namespaced claims containing dots (`https://x.org/roles`)
    still work.
    """
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set_claim(claims: dict[str, Any], path: str, value: Any) -> None:
    """Place a claim at a dotted path, so development tokens match the configured mapping."""
    parts = path.split(".")
    target = claims
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _roles(value: Any) -> frozenset[str]:
    """Roles may be a list or a space/comma separated string; unknown roles are dropped
    so a provider's unrelated roles (`offline_access`, ...) grant nothing here."""
    if isinstance(value, str):
        items: Iterable[Any] = _ROLE_SPLIT.split(value)
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return frozenset()
    return frozenset(r for r in items if isinstance(r, str) and r in _KNOWN_ROLES)


def map_claims(claims: dict[str, Any], settings: Settings) -> Principal:
    """Map verified claims to a Principal using the configured claim names.

    Users and service clients (client-credentials tokens) map the same way; a service
    client usually has no name, so the name falls back to the subject.
    """
    subject = _claim(claims, settings.claim_subject)
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidToken("missing subject")
    return Principal(
        id=subject,
        name=_text(_claim(claims, settings.claim_name)) or subject,
        agency=_text(_claim(claims, settings.claim_agency)),
        roles=_roles(_claim(claims, settings.claim_roles)),
        unit=_text(_claim(claims, settings.claim_unit)),
    )


# --------------------------------------------------------------------------- key sources


class KeySource(Protocol):
    """Where verification keys come from; `issuer` is the `iss` tokens must carry."""

    issuer: str

    async def get_key(self, kid: str | None) -> Key: ...


def _usable_verification_key(key: Key) -> bool:
    """Only asymmetric signature keys may verify tokens: a symmetric (`oct`) key in a
    published set would let anyone holding it mint tokens."""
    return key.key_type != "oct" and key.get("use") in (None, "sig")


class OIDCKeySource:
    """Signing keys of an OpenID provider, found via discovery and cached.

    Unknown `kid`s trigger at most one JWKS re-fetch per `refresh_interval` seconds, so
    key rotation is picked up quickly while a flood of bogus `kid`s cannot hammer the
    provider. The initial load (`refresh()`) does not count against that budget.
    """

    def __init__(
        self,
        issuer: str,
        http_client: httpx.AsyncClient,
        refresh_interval: float,
        *,
        max_age: float = _JWKS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.issuer = issuer
        self._http = http_client
        self._interval = float(refresh_interval)
        self._max_age = float(max_age)
        self._clock = clock
        self._jwks_uri: str | None = None
        self._keys: dict[str, Key] = {}
        self._only_key: Key | None = None  # for tokens without `kid` when exactly one key exists
        self._fetched_at: float | None = None  # last successful JWKS fetch
        self._last_attempt: float | None = None  # last on-demand re-fetch (rate limit)
        self._lock = asyncio.Lock()

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def refresh(self) -> None:
        """Fetch discovery (first time) and the JWKS now; raises KeySourceError."""
        async with self._lock:
            await self._fetch()

    async def get_key(self, kid: str | None) -> Key:
        key = self._lookup(kid)
        if key is not None and not self._stale():
            return key  # the hot path: no await on I/O, no parsing
        if key is not None and self._lock.locked():
            return key  # a refresh is already running; don't queue behind it with a good key
        if self._may_attempt():
            async with self._lock:
                # Another request may have refreshed while this one waited for the lock.
                key = self._lookup(kid)
                if (key is None or self._stale()) and self._may_attempt():
                    self._last_attempt = self._clock()
                    try:
                        await self._fetch()
                    except IssuerMismatch as exc:
                        log.error("OIDC key refresh refused: %s", exc)
                    except KeySourceError as exc:
                        log.warning("OIDC key refresh failed, keeping cached keys: %s", exc)
        key = self._lookup(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise InvalidToken("signing keys unavailable")
        raise InvalidToken("unknown signing key")

    async def replacement_for(self, key: Key) -> Key | None:
        """The provider's single key, re-fetched (rate-limited like an unknown `kid`), when `key`
        failed to verify a token that names no `kid`: providers that omit `kid` still rotate keys."""
        async with self._lock:
            if self._only_key is not None and self._only_key is not key:
                return self._only_key  # another request already picked up the new key
            if not self._may_attempt():
                return None
            self._last_attempt = self._clock()
            try:
                await self._fetch()
            except KeySourceError as exc:
                log.warning("OIDC key refresh failed, keeping cached keys: %s", exc)
                return None
            return self._only_key if self._only_key is not key else None

    def _lookup(self, kid: str | None) -> Key | None:
        if kid is None:
            return self._only_key
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age

    def _may_attempt(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self._interval

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            response = await self._http.get(url, timeout=_HTTP_TIMEOUT, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise KeySourceError(f"{what} request failed ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise KeySourceError(f"{what} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise KeySourceError(f"{what} is not JSON") from exc

    async def _fetch(self) -> None:
        if self._jwks_uri is None:
            doc = await self._get_json(self.discovery_url, "OIDC discovery")
            if not isinstance(doc, dict):
                raise KeySourceError("OIDC discovery is not a JSON object")
            if doc.get("issuer") != self.issuer:
                # Spec (OIDC Discovery 4.3): the issuer must match exactly, else the
                # document may belong to someone else.
                raise IssuerMismatch("discovery issuer does not match the configured issuer")
            jwks_uri = doc.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise KeySourceError("OIDC discovery has no jwks_uri")
            self._jwks_uri = jwks_uri

        jwks = await self._get_json(self._jwks_uri, "JWKS")
        raw_keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(raw_keys, list):
            raise KeySourceError("JWKS has no key list")

        keys: dict[str, Key] = {}
        usable: list[Key] = []
        skipped = 0
        for data in raw_keys:
            try:
                key = JWKRegistry.import_key(data)
            except (JoseError, ValueError, TypeError):
                skipped += 1  # one malformed or unsupported key must not break the others
                continue
            if not _usable_verification_key(key):
                skipped += 1
                continue
            usable.append(key)
            if key.kid:
                keys[key.kid] = key
        if skipped:
            log.info("JWKS: ignored %d key(s) not usable for signature verification", skipped)
        # Swap in whole sets so concurrent readers never see a half-built cache.
        self._keys = keys
        self._only_key = usable[0] if len(usable) == 1 else None
        self._fetched_at = self._clock()
        log.info("JWKS loaded: %d signing key(s)", len(usable))


# --------------------------------------------------------------------------- development issuer

_dev_warning_logged = False


def _dev_subject(roles: list[str], agency: str | None, unit: str | None, name: str | None) -> str:
    parts = ["dev", "+".join(roles)] + [p for p in (agency, unit, name) if p]
    return ":".join(parts)


class DevelopmentIssuer:
    """A token issuer for development only, so the service works without an identity provider.

    Its key is created once and kept in `<data_dir>/dev-issuer/signing-key.json` (mode
    0600) so tokens survive restarts. Whoever can read that file can mint any role, which
    is why it refuses to exist in production.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.production:
            raise RuntimeError(
                "The development token issuer cannot run with REGISTRY_ENV=production: "
                "configure REGISTRY_OIDC_ISSUER (and REGISTRY_OIDC_AUDIENCE) instead."
            )
        self._settings = settings
        self.issuer = settings.base_url() + "/dev-issuer"
        self.key_path = Path(settings.data_dir) / "dev-issuer" / "signing-key.json"
        self._private_key = self._load_or_create_key()
        self.kid: str = self._private_key.kid  # type: ignore[assignment]
        public = self._private_key.as_dict(private=False)
        self._public_key = ECKey.import_key(public)
        self._jwks = {"keys": [public]}
        self._warn_once()

    def _warn_once(self) -> None:
        global _dev_warning_logged
        if _dev_warning_logged:
            return
        _dev_warning_logged = True
        log.warning(
            "\n%s\nDEVELOPMENT TOKEN ISSUER ACTIVE: this service signs its own access tokens "
            "(issuer %s).\nAnyone who can read %s can mint tokens with any role.\n"
            "Never use this with real data; set REGISTRY_OIDC_ISSUER for a real identity provider.\n%s",
            "!" * 78,
            self.issuer,
            self.key_path,
            "!" * 78,
        )

    def _load_or_create_key(self) -> ECKey:
        directory = self.key_path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.key_path.exists():
            self._create_key_file()
        return self._read_key_file()

    def _create_key_file(self) -> None:
        """Write the new key atomically; if another process wins the race, its key is used."""
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": _DEV_ALG}, auto_kid=True)
        fd, tmp = tempfile.mkstemp(dir=self.key_path.parent, prefix=".signing-key.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(key.as_dict(private=True), fh)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.key_path)  # fails if it exists: never overwrite a key
            except FileExistsError:
                pass
            except OSError:
                if not self.key_path.exists():  # filesystems without hard links
                    os.replace(tmp, self.key_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _read_key_file(self) -> ECKey:
        mode = stat.S_IMODE(self.key_path.stat().st_mode)
        if mode & 0o077:
            log.warning("development signing key file was readable by others; restricting it to 0600")
            os.chmod(self.key_path, 0o600)
        try:
            data = json.loads(self.key_path.read_text(encoding="utf-8"))
            key = ECKey.import_key(data)
        except (OSError, ValueError, TypeError, JoseError) as exc:
            raise RuntimeError(
                f"Development signing key {self.key_path} is unreadable; delete it to create a new one."
            ) from exc
        if key.curve_name != "P-256" or not key.is_private:
            raise RuntimeError(
                f"Development signing key {self.key_path} is not a P-256 private key; delete it to create a new one."
            )
        key.ensure_kid()
        return key

    def issue(
        self,
        *,
        role: str | list[str],
        agency: str | None,
        unit: str | None = None,
        name: str | None = None,
        subject: str | None = None,
        ttl_seconds: int = 8 * 3600,
    ) -> str:
        """Sign a token shaped like one from a real provider, with claims at the configured paths."""
        roles = [role] if isinstance(role, str) else list(role)
        unknown = [r for r in roles if r not in _KNOWN_ROLES]
        if not roles or unknown:
            raise ValueError(f"role must be one or more of: {', '.join(ROLES)}")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        s = self._settings
        now = int(time.time())
        sub = subject or _dev_subject(roles, agency, unit, name)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": s.oidc_audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        }
        _set_claim(claims, s.claim_subject, sub)
        if name is not None:
            _set_claim(claims, s.claim_name, name)
        if agency is not None:
            _set_claim(claims, s.claim_agency, agency)
        _set_claim(claims, s.claim_roles, roles)
        if unit is not None:
            _set_claim(claims, s.claim_unit, unit)
        header = {"alg": _DEV_ALG, "kid": self.kid}
        return jwt.encode(header, claims, self._private_key, algorithms=[_DEV_ALG])

    def jwks(self) -> dict[str, Any]:
        """The public key set (never the private part)."""
        return {"keys": [dict(k) for k in self._jwks["keys"]]}

    def discovery(self) -> dict[str, Any]:
        """A minimal OpenID configuration so standard clients can find the keys."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + "/jwks.json",
            "id_token_signing_alg_values_supported": [_DEV_ALG],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
        }

    async def get_key(self, kid: str | None) -> Key:
        """Key source for TokenVerifier: the key is local, no HTTP involved."""
        if kid is None or kid == self.kid:
            return self._public_key
        raise InvalidToken("unknown signing key")


# --------------------------------------------------------------------------- verifier


def _allowed_algorithms(configured: Iterable[str]) -> frozenset[str]:
    """The configured allow-list minus anything symmetric or unsigned: with HMAC a
    public key could be used as the shared secret, and `none` is no signature at all."""
    allowed = set()
    for name in configured:
        model = JWSRegistry.algorithms.get(name)
        if name == "none" or model is None or model.key_type == "oct":
            log.warning("token algorithm %r is not allowed and is ignored", name)
            continue
        allowed.add(name)
    if not allowed:
        raise RuntimeError("REGISTRY_OIDC_ALGORITHMS contains no usable asymmetric algorithm")
    return frozenset(allowed)


_CLAIM_REASONS = {
    "iss": "wrong issuer",
    "aud": "wrong audience",
    "nbf": "token not yet valid",
    "iat": "token issued in the future",
    "exp": "invalid expiry",
}


_VERIFIED_MAX = 10_000  # tokens remembered; the table is emptied when full


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str | None
    key: Key
    until: float  # expiry plus leeway


class TokenVerifier:
    """Verifies bearer tokens on every request; everything expensive is prepared once."""

    def __init__(self, settings: Settings, *, key_source: KeySource) -> None:
        if settings.production and isinstance(key_source, DevelopmentIssuer):
            raise RuntimeError("The development token issuer cannot be used with REGISTRY_ENV=production.")
        self._settings = settings
        self._source = key_source
        self._verified: dict[str, _Verified] = {}
        self.issuer = key_source.issuer
        self._allowed = _allowed_algorithms(settings.oidc_algorithms)
        # Not strict about unknown header names (providers add e.g. `x5t`); `crit` is still enforced.
        self._jws_registry = JWSRegistry(algorithms=sorted(self._allowed), strict_check_header=False)
        self._claims_registry = jwt.JWTClaimsRegistry(
            leeway=settings.oidc_leeway_seconds,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": settings.oidc_audience},
            exp={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        """Return the caller's Principal, or raise InvalidToken with a short reason.

        A token already verified is accepted again without re-checking its signature while it
        has not expired and its signing key is still the one the key source holds (asked the
        same way as for a new token, so a rotation or a withdrawn key takes effect as before).
        The signature check is most of the cost of a small request."""
        known = self._verified.get(token)
        if known is not None and time.time() < known.until:
            if await self._source.get_key(known.kid) is known.key:
                return known.principal
        principal, kid, key, expires = await self._verify(token)
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = _Verified(principal, kid, key, expires + self._settings.oidc_leeway_seconds)
        return principal

    async def verify_until(self, token: str) -> tuple[Principal, float]:
        """The caller, and when their token stops being accepted (its expiry plus the leeway):
        a long-lived connection authenticated by it is closed then."""
        principal = await self.verify(token)
        return principal, self._verified[token].until

    async def _verify(self, token: str) -> tuple[Principal, str | None, Key, float]:
        if not isinstance(token, str) or not token:
            raise InvalidToken("malformed token")
        try:
            obj = jws.extract_compact(token.encode("ascii"))
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise InvalidToken("malformed token") from None

        header = obj.headers()
        alg = header.get("alg")
        # Checked before any key lookup: `none` and HMAC never reach a key.
        if not isinstance(alg, str) or alg not in self._allowed:
            raise InvalidToken("algorithm not allowed")
        if header.get("b64", True) is not True:
            raise InvalidToken("malformed token")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token")

        key = await self._source.get_key(kid)
        valid = self._signed_by(obj, key)
        replacement = getattr(self._source, "replacement_for", None)
        if not valid and kid is None and replacement is not None:
            newer = await replacement(key)
            valid = newer is not None and self._signed_by(obj, newer)
            key = newer if valid else key
        if not valid:
            raise InvalidToken("bad signature")

        try:
            claims = json.loads(obj.payload)
        except (ValueError, TypeError):
            raise InvalidToken("malformed token") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed token")

        try:
            self._claims_registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("token expired") from None
        except MissingClaimError as exc:
            raise InvalidToken(f"missing claim: {exc.claim}") from None
        except InvalidClaimError as exc:
            raise InvalidToken(_CLAIM_REASONS.get(exc.claim, f"invalid claim: {exc.claim}")) from None
        except JoseError:
            raise InvalidToken("invalid claims") from None
        self._check_lifetime(claims)

        return map_claims(claims, self._settings), kid, key, float(claims["exp"])

    def _check_lifetime(self, claims: dict[str, object]) -> None:
        """A token living longer than the maximum is refused: a stolen one stays useful that long."""
        exp, iat = claims["exp"], claims.get("iat")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise InvalidToken("invalid expiry")
        issued = iat if isinstance(iat, (int, float)) and not isinstance(iat, bool) else time.time()
        limit = self._settings.max_token_lifetime_seconds
        if exp - issued > limit + self._settings.oidc_leeway_seconds:
            raise InvalidToken(f"token lifetime exceeds the maximum of {limit} seconds")

    def _signed_by(self, obj: Any, key: Key) -> bool:
        if key.key_type == "oct":
            raise InvalidToken("unknown signing key")
        try:
            return bool(jws.validate_compact(obj, key, registry=self._jws_registry))
        except JoseError:
            # e.g. header says RS256 but the key is EC, or the key is pinned to another alg
            return False


async def build_verifier(settings: Settings, http_client: httpx.AsyncClient) -> tuple[TokenVerifier, DevelopmentIssuer | None]:
    """Pick the key source from configuration: the OIDC provider, or the development issuer."""
    if settings.oidc_issuer is None:
        if settings.production:
            raise RuntimeError(
                "REGISTRY_OIDC_ISSUER must be set with REGISTRY_ENV=production; "
                "the development token issuer is refused in production."
            )
        dev = DevelopmentIssuer(settings)
        return TokenVerifier(settings, key_source=dev), dev

    source = OIDCKeySource(settings.oidc_issuer, http_client, settings.jwks_refresh_interval_seconds)
    try:
        await source.refresh()
    except IssuerMismatch as exc:
        raise RuntimeError(f"OIDC configuration error for {settings.oidc_issuer}: {exc}") from exc
    except KeySourceError as exc:
        # Transient provider trouble should not stop the service; requests retry (rate-limited).
        log.warning("OIDC keys not loaded at startup, will retry on demand: %s", exc)
    return TokenVerifier(settings, key_source=source), None
