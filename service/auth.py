"""Who calls: a principal proven by a token, an identity provider's JWT or a client
certificate, and the user it acts as (CONTRACT §13).

Independent of the transport: the gRPC interceptor hands in the `authorization` value and
the verified certificate's common name, and gets a Principal or an error back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

import jwt

from service.config import Config, JwtConfig
from service.domain.errors import PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)

EVERYONE = "*"
SERVER_TOKEN_PRINCIPAL = "server.token"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `how`: token, jwt, certificate, or none (no check configured)."""

    name: str
    how: str
    acts_for: frozenset[str] = frozenset()

    def acting_user(self, claimed: str) -> str:
        """The user this call acts as: the principal itself, or the user it names in
        x-woxqaq-user when acts_for allows it."""
        if not claimed or claimed == self.name:
            return self.name
        if EVERYONE in self.acts_for or claimed in self.acts_for:
            return claimed
        raise PermissionDenied(
            f"you are authenticated as {self.name!r}, which may act only as itself: drop "
            f"x-woxqaq-user {claimed!r} (or --user), or use {claimed!r}'s own credentials"
        )


@dataclass(frozen=True)
class Caller:
    """One call's principal and the user it acts as."""

    principal: Principal
    user: str

    @property
    def via(self) -> str:
        """The principal when it acts for someone else (the bot for a Slack user), else ""."""
        name = self.principal.name
        return name if name and name != self.user else ""


# The service with no authentication configured (loopback only): callers say who they are.
UNCHECKED = Principal(name="", how="none", acts_for=frozenset({EVERYONE}))


@dataclass(frozen=True)
class _TokenPrincipal:
    sha256: bytes
    principal: Principal


class Authenticator:
    def __init__(self, config: Config) -> None:
        self.required = config.authenticates
        self._tokens: list[_TokenPrincipal] = []
        self._by_name: dict[str, Principal] = {}
        if config.server.token:
            server = Principal(SERVER_TOKEN_PRINCIPAL, "token", frozenset({EVERYONE}))
            self._tokens.append(_TokenPrincipal(_digest(config.server.token), server))
        for p in config.auth.principals:
            principal = Principal(p.name, "token", frozenset(p.acts_for))
            self._by_name[p.name] = principal
            if p.token:
                self._tokens.append(_TokenPrincipal(_digest(p.token), principal))
            elif p.token_sha256:
                self._tokens.append(_TokenPrincipal(bytes.fromhex(p.token_sha256), principal))
        self._jwt = JwtVerifier(config.auth.jwt) if config.auth.jwt else None

    def authenticate(self, authorization: str | None, certificate_name: str | None) -> Principal:
        """The principal of a call; raises Unauthenticated when it proves none (and one is
        required). A bearer token identifies the caller; else its client certificate."""
        if not self.required:  # nothing to check against: callers say who they are
            return UNCHECKED
        if authorization is not None:
            return self._from_bearer(authorization)
        if certificate_name:
            known = self._by_name.get(certificate_name)
            return Principal(
                certificate_name, "certificate", known.acts_for if known else frozenset()
            )
        raise Unauthenticated(
            "missing credentials: send metadata 'authorization: Bearer <token>' "
            "(woxqaq --token or WOXQAQ_TOKEN) or a client certificate"
        )

    def _from_bearer(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")  # exact: no stray spaces accepted
        if scheme != "Bearer" or not token:
            raise Unauthenticated(
                "invalid token in 'authorization' metadata: send 'Bearer <token>'"
            )
        given = _digest(token)
        found: Principal | None = None
        for candidate in self._tokens:  # every one compared: no early exit to time
            if hmac.compare_digest(given, candidate.sha256):
                found = candidate.principal
        if found is not None:
            return found
        if self._jwt is not None and token.count(".") == 2:
            return self._jwt.verify(token)
        raise Unauthenticated("invalid token in 'authorization' metadata")


class JwtVerifier:
    """Checks an identity provider's tokens: signature by a key of its JWKS (fetched,
    cached, refetched on an unknown key id), issuer, audience, expiry, allowed algorithms."""

    def __init__(self, config: JwtConfig) -> None:
        self.config = config
        self._keys = jwt.PyJWKClient(
            config.jwks_url,
            cache_keys=False,  # the JWK set cache (lifespan) holds them; rotation drops old ones
            lifespan=config.jwks_cache_s,
            timeout=5,
            cooldown_duration=config.jwks_refresh_cooldown_s,
        )

    def verify(self, token: str) -> Principal:
        c = self.config
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in c.algorithms:
                raise Unauthenticated(
                    f"the token is signed with {header.get('alg')!r}; this service accepts "
                    f"{', '.join(c.algorithms)} from {c.issuer}"
                )
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(c.algorithms),
                audience=c.audience,
                issuer=c.issuer,
                leeway=c.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired: get a new one") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the token is not for this service (audience {c.audience!r})"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the token is not from {c.issuer}") from None
        except jwt.PyJWKClientConnectionError:
            log.warning("identity provider keys could not be fetched from %s", c.jwks_url)
            raise Unauthenticated(
                "the identity provider's keys cannot be fetched now; try again shortly"
            ) from None
        except jwt.PyJWKClientError:
            raise Unauthenticated(
                f"the token is signed with a key {c.issuer} does not publish"
            ) from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        user = claims.get(c.user_claim)
        if not isinstance(user, str) or not user.strip():
            raise Unauthenticated(f"the token has no {c.user_claim!r} claim naming its user")
        return Principal(user.strip(), "jwt")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
