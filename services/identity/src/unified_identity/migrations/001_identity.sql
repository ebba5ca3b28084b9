-- Identity: accounts, users, memberships, invitations, OAuth clients, sessions (refresh-token families),
-- authorization codes, signing keys and the sign-in throttle. Secrets (codes, refresh tokens, invitation
-- tokens) are stored only as SHA-256 hashes; passwords only as Argon2id hashes.

CREATE TABLE accounts (
    account_id          UUID PRIMARY KEY,
    legal_name          TEXT NOT NULL,
    home_marketplace_id TEXT NOT NULL,
    registered_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    user_id        UUID PRIMARY KEY,
    email          TEXT NOT NULL,            -- normalised (trimmed, lowercase)
    password_hash  TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- A user belongs to at most one account (the token names one account); the owner is unique per account.
CREATE TABLE memberships (
    account_id   UUID NOT NULL REFERENCES accounts (account_id),
    user_id      UUID NOT NULL REFERENCES users (user_id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    permissions  TEXT[] NOT NULL,
    marketplaces JSONB NOT NULL,             -- "*" or a list of SP-API marketplace IDs
    joined_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, user_id),
    UNIQUE (user_id)
);
CREATE UNIQUE INDEX memberships_one_owner ON memberships (account_id) WHERE role = 'owner';

CREATE TABLE invitations (
    invitation_id    UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts (account_id),
    email            TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    permissions      TEXT[] NOT NULL,
    marketplaces     JSONB NOT NULL,
    token_hash       BYTEA NOT NULL UNIQUE,
    invited_by       UUID NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    accepted_at      TIMESTAMPTZ,
    accepted_user_id UUID,
    revoked_at       TIMESTAMPTZ
);
CREATE INDEX invitations_account ON invitations (account_id);

CREATE TABLE oauth_clients (
    client_id                TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    redirect_uris            TEXT[] NOT NULL,
    post_logout_redirect_uris TEXT[] NOT NULL DEFAULT '{}',
    secret_hash              BYTEA,          -- NULL: a public client (PKCE only, no secret)
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One sign-in = one session = one refresh-token family; revoking the session kills the family.
CREATE TABLE sessions (
    session_id     UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users (user_id),
    account_id     UUID NOT NULL REFERENCES accounts (account_id),
    client_id      TEXT NOT NULL REFERENCES oauth_clients (client_id),
    scope          TEXT NOT NULL,
    auth_time      TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE authorization_codes (
    code_hash      BYTEA PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oauth_clients (client_id),
    user_id        UUID NOT NULL REFERENCES users (user_id),
    account_id     UUID NOT NULL REFERENCES accounts (account_id),
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    auth_time      TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    session_id     UUID                      -- the session the code was exchanged for
);

CREATE TABLE refresh_tokens (
    token_hash  BYTEA PRIMARY KEY,
    session_id  UUID NOT NULL REFERENCES sessions (session_id),
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ                  -- rotated: presenting it again revokes the session
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Ed25519 signing keys. The active key has retired_at NULL; a retired key stays in the JWKS until every
-- token it signed has expired.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    public_jwk  JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- Failed sign-ins per email (known or not), shared by every process of the service.
CREATE TABLE signin_failures (
    email     TEXT NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX signin_failures_email ON signin_failures (email, failed_at);
