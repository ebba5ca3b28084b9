-- Per account, the last period up to which every month since its first subscription is closed and clean
-- (not dirty, not held): due_periods generates months only after it, so its cost follows the accounts with
-- work, not accounts x months. A fact of an earlier month moves it back (in the consumer's transaction).
CREATE TABLE billing_closed_through (
    account_id UUID PRIMARY KEY,
    period     TEXT NOT NULL
);
