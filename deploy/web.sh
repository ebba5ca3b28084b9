#!/usr/bin/env bash
# The web app as the platform runs it (deploy/Procfile): registers its confidential OpenID Connect client at
# identity (redirect URIs of WEB_PUBLIC_URL; the secret is generated once into the state folder, mode 0600,
# and never printed), then serves on HTTP_PORT (8050).
set -euo pipefail
STATE="${US_STATE_DIR:-/var/tmp/unified-seller}"
URL="${WEB_PUBLIC_URL:-http://127.0.0.1:${HTTP_PORT:-8050}}"
export OIDC_CLIENT_ID="${OIDC_CLIENT_ID:-unified-seller-web}"
export OIDC_CLIENT_SECRET_FILE="${OIDC_CLIENT_SECRET_FILE:-$STATE/secrets/web-client-secret}"
DATABASE_URL="${IDENTITY_DATABASE_URL:-postgresql://postgres@127.0.0.1:${PG_PORT:-55432}/identity}" \
  python -m unified_identity register-client --client-id "$OIDC_CLIENT_ID" --name "unified-seller web" \
  --redirect-uri "$URL/auth/callback" --post-logout-redirect-uri "$URL/signed-out" \
  --confidential --secret-file "$OIDC_CLIENT_SECRET_FILE"
exec python -m unified_web serve
