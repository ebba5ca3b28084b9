-- Access that ends everywhere: when a membership's role, permissions or scope last changed. Tokens issued
-- before it carry a grant that no longer holds and every service refuses them (by user and issue time, whole
-- seconds), so identity issues the member's next token no earlier than the second after it.
ALTER TABLE memberships ADD COLUMN access_changed_at TIMESTAMPTZ;

-- Signing keys encrypted at rest (Fernet, key from IDENTITY_KEY_ENCRYPTION_KEY); plaintext rows left by an
-- older version are encrypted at start-up and their PEM column cleared.
ALTER TABLE signing_keys ADD COLUMN private_key_enc BYTEA;
ALTER TABLE signing_keys ALTER COLUMN private_pem DROP NOT NULL;

-- Sign-in throttle per source address and per client as well as per email (and per email + address).
ALTER TABLE signin_failures ADD COLUMN address TEXT;
ALTER TABLE signin_failures ADD COLUMN client_id TEXT;
CREATE INDEX signin_failures_address ON signin_failures (address, failed_at);
CREATE INDEX signin_failures_client ON signin_failures (client_id, failed_at);
CREATE INDEX signin_failures_at ON signin_failures (failed_at);

-- Registrations per source address (each costs an Argon2 hash): throttled like failed sign-ins.
CREATE TABLE registration_attempts (
    address      TEXT NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX registration_attempts_address ON registration_attempts (address, attempted_at);

-- "Add people" keeps the person: the invitee's name, carried to the user when the invitation is accepted.
ALTER TABLE invitations ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN name TEXT;

-- E-mail verification by a link sent to the address (single use, stored only as a hash).
CREATE TABLE email_verifications (
    token_hash BYTEA PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (user_id),
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
