-- Single sign-on: a browser session is what the sign-in cookie names. It is created by a password sign-in,
-- lets later authorization requests (of any client) skip the password form until it expires, and is ended
-- by end-session or when the member is removed. The cookie value is stored only as its SHA-256 hash.
CREATE TABLE browser_sessions (
    browser_session_id UUID PRIMARY KEY,
    token_hash         BYTEA NOT NULL UNIQUE,
    user_id            UUID NOT NULL REFERENCES users (user_id),
    account_id         UUID NOT NULL REFERENCES accounts (account_id),
    auth_time          TIMESTAMPTZ NOT NULL,     -- when the password was checked (the ID token's auth_time)
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,     -- absolute: never extended by use
    revoked_at         TIMESTAMPTZ,
    revoked_reason     TEXT
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- Which browser session a code was issued in, and so which client sessions (refresh-token families) were
-- born from it: signing out of the browser session ends them too.
ALTER TABLE authorization_codes ADD COLUMN browser_session_id UUID;
ALTER TABLE sessions ADD COLUMN browser_session_id UUID;
CREATE INDEX sessions_browser_session ON sessions (browser_session_id);

-- Server secrets shared by every process of the service (unless set in the environment), e.g. the key
-- that signs the sign-in form's CSRF tokens. Created once, on first start.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
