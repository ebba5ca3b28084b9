-- South Africa and Egypt join the catalog (DESIGN section 3): their plan fees, ours. EGP has no ECB
-- reference rate: a period that needs it is held until a rate source for EGP is configured (section 10).
INSERT INTO fee_schedule (marketplace_id, currency, fee, effective_from, note) VALUES
    ('AE08WJ6YKNBMC', 'ZAR', 400.00, '2000-01-01', 'DESIGN section 3'),
    ('ARBP9OOSHTCHU', 'EGP', 800.00, '2000-01-01', 'DESIGN section 3 (no ECB reference rate)');
