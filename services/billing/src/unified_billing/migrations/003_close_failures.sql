-- Closes that failed (the account was busy, or an error): the period stays due, and the scheduler tries it
-- after the periods that did not fail, least recently failed first, so one failing period cannot block the
-- rest. A successful close deletes its row.
CREATE TABLE billing_close_failures (
    account_id     UUID NOT NULL,
    period         TEXT NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    attempts       INT NOT NULL DEFAULT 1,
    last_error     TEXT NOT NULL,
    first_failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, period)
);
