-- Dashboard figures: when a job first started and when it finished, maintained by the store's
-- UPDATE (not by callers), and the workers that consume each pool.
ALTER TABLE jobs ADD COLUMN started_at timestamptz;
ALTER TABLE jobs ADD COLUMN finished_at timestamptz;

UPDATE jobs SET finished_at = updated_at WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE INDEX jobs_started_idx ON jobs (started_at) WHERE started_at IS NOT NULL;
CREATE INDEX jobs_finished_idx ON jobs (finished_at, state) WHERE finished_at IS NOT NULL;

CREATE TABLE workers (
  id          text PRIMARY KEY,
  pool        text NOT NULL,
  concurrency integer NOT NULL CHECK (concurrency >= 0),
  in_flight   integer NOT NULL CHECK (in_flight >= 0),
  seen_at     timestamptz NOT NULL
);

CREATE INDEX workers_seen_idx ON workers (seen_at);
