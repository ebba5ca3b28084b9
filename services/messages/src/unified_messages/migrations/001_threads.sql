-- Buyer-message threads of this regional instance; each thread's history is its event stream
-- (stream_id = 'thread:<account_id>:<thread_id>'). State and deadline are recomputed from the entries.
CREATE TABLE threads (
    account_id        UUID NOT NULL,
    thread_id         TEXT NOT NULL,
    marketplace_id    TEXT NOT NULL,
    amazon_order_id   TEXT,
    subject           TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('awaiting_reply', 'replied', 'no_response_needed')),
    awaiting_since    TIMESTAMPTZ,
    reply_deadline    TIMESTAMPTZ,
    last_activity_at  TIMESTAMPTZ NOT NULL,
    -- keyset order of the thread list: the reply deadline while awaiting, else the last activity
    sort_at           TIMESTAMPTZ NOT NULL,
    buyer_messages    INT NOT NULL,
    replies           INT NOT NULL,
    stream_version    INT NOT NULL,
    PRIMARY KEY (account_id, thread_id),
    CHECK ((state = 'awaiting_reply') = (reply_deadline IS NOT NULL))
);
CREATE INDEX threads_by_state ON threads (account_id, state, sort_at, thread_id);
CREATE INDEX threads_by_sort ON threads (account_id, sort_at, thread_id);

-- Buyer messages, seller replies and "no response needed" marks. Bodies are plain text, stored verbatim.
-- entry_id is the message_id (unique per account: idempotency) or 'mark:<time>' for a mark.
CREATE TABLE thread_entries (
    account_id       UUID NOT NULL,
    entry_id         TEXT NOT NULL,
    thread_id        TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('buyer', 'reply', 'mark')),
    at               TIMESTAMPTZ NOT NULL,
    subject          TEXT,
    body             TEXT,
    amazon_order_id  TEXT,
    actor            UUID,
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, entry_id),
    FOREIGN KEY (account_id, thread_id) REFERENCES threads (account_id, thread_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX thread_entries_by_thread ON thread_entries (account_id, thread_id, at);
