"""HTTP of the OpenID Connect provider's machine endpoints: discovery, JWKS, token, userinfo, revoke. Errors of
the OAuth endpoints follow RFC 6749 (``oidc_web``); the rest are problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from unified_identity import keys
from unified_identity.domain import OAuthError
from unified_identity.oidc_web import NO_STORE, identity_of, oauth_error_response, single_values
from unified_identity.results import TokenGrant, UserInfo
from unified_shared.auth import Principal, current_principal

router = APIRouter(tags=["openid-connect"])

SCOPES = ["openid", "profile", "email", "offline_access"]


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    issuer = identity_of(request).settings.issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "revocation_endpoint": f"{issuer}/revoke",
            "end_session_endpoint": f"{issuer}/end-session",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "select_account"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [keys.ALG],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "scopes_supported": SCOPES,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "sid",
                "email",
                "email_verified",
                "account_id",
                "role",
                "permissions",
                "marketplaces",
            ],
            "authorization_response_iss_parameter_supported": True,
        }
    )


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    identity = identity_of(request)
    async with identity.pool.acquire() as conn:
        body = await keys.jwks(conn, now=identity.clock(), grace=identity.key_grace)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


@router.post("/token")
async def token(request: Request) -> JSONResponse:
    identity = identity_of(request)
    try:
        form = single_values(await request.form())
        grant = await identity.token(form, request.headers.get("authorization"))
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(token_body(grant), headers=NO_STORE)


@router.api_route("/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, principal: Principal = Depends(current_principal)) -> JSONResponse:
    return JSONResponse(userinfo_body(await identity_of(request).userinfo(principal)), headers=NO_STORE)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    identity = identity_of(request)
    try:
        form = single_values(await request.form())
        await identity.revoke(form, request.headers.get("authorization"))
    except OAuthError as exc:
        return oauth_error_response(exc)
    return Response(status_code=200, headers=NO_STORE)


def token_body(grant: TokenGrant) -> dict[str, Any]:
    """RFC 6749 5.1's JSON (plus OIDC's ``id_token`` for the openid scope)."""
    body: dict[str, Any] = {
        "access_token": grant.access_token,
        "token_type": grant.token_type,
        "expires_in": grant.expires_in,
        "scope": grant.scope,
    }
    if grant.id_token is not None:
        body["id_token"] = grant.id_token
    body["refresh_token"] = grant.refresh_token
    return body


def userinfo_body(info: UserInfo) -> dict[str, Any]:
    return {
        "sub": str(info.user_id),
        "email": info.email,
        "email_verified": info.email_verified,
        **({"name": info.name} if info.name else {}),
        "account_id": str(info.account_id),
        "account_name": info.account_name,
        "role": info.role,
        "permissions": list(info.permissions),
        "marketplaces": info.marketplaces if isinstance(info.marketplaces, str) else list(info.marketplaces),
    }
