-- A rebuild's progress, written by the rebuilding process every few seconds, so every serving instance can
-- show it on /metrics and in its health detail: {"applied": n, "to_apply": m, "eta_s": s, "at": "..."}.
ALTER TABLE view_generations ADD COLUMN progress JSONB;
