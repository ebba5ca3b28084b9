-- The scheduler asks every tick when each account's first subscription started (months due from then on).
CREATE INDEX subscription_facts_first_start ON subscription_facts (account_id, at) WHERE kind = 'SubscriptionStarted';
