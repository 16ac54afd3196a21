-- Job records (one column per scalar field of the core's `Job`). Runs inside the migration
-- transaction, so it must not contain BEGIN/COMMIT or CREATE INDEX CONCURRENTLY.
CREATE TABLE jobs (
  id                    text PRIMARY KEY,
  state                 text NOT NULL
                        CHECK (state IN ('submitted', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
  version               integer NOT NULL,
  priority              text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
  rows                  bigint NOT NULL,
  estimated_runtime_sec double precision NOT NULL,
  latency_sensitive     boolean NOT NULL,
  type                  text NOT NULL,
  data                  jsonb NOT NULL,
  -- The classifier's decision: all three set, or all three null.
  queue                 text,
  cost                  double precision,
  reason                text,
  attempts              integer NOT NULL,
  max_attempts          integer NOT NULL,
  error                 jsonb,
  result_key            text,
  batch_task_id         text,
  created_at            timestamptz NOT NULL,
  updated_at            timestamptz NOT NULL,
  heartbeat_at          timestamptz,
  next_attempt_at       timestamptz,
  -- Store-internal: when the transport accepted the message for the current state (NULL: none yet).
  dispatched_at         timestamptz,
  history               jsonb NOT NULL,
  CONSTRAINT jobs_decision_complete CHECK ((queue IS NULL) = (cost IS NULL) AND (queue IS NULL) = (reason IS NULL))
);

-- queryJobs: newest first, keyset on (created_at, id), unfiltered or by state or by queue.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_state_created_idx ON jobs (state, created_at DESC, id DESC);
CREATE INDEX jobs_queue_created_idx ON jobs (queue, created_at DESC, id DESC);

-- findJobsToRecover: only live jobs, which stay few while finished ones pile up.
CREATE INDEX jobs_live_updated_idx ON jobs (state, updated_at)
  WHERE state IN ('submitted', 'queued', 'retrying', 'running');
