-- Browser sessions of the web app: the only state it keeps. The cookie holds a random value; only its
-- SHA-256 hash is stored. A row is a pending sign-in (login_* set, no user yet) or a signed-in session.
CREATE TABLE web_sessions (
    id_hash          bytea PRIMARY KEY,
    csrf_token       text NOT NULL,
    login_state      text,
    login_nonce      text,
    login_verifier   text,
    return_to        text,
    user_id          uuid,
    account_id       uuid,
    email            text,
    access_token     text,
    refresh_token    text,
    id_token         text,
    access_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
