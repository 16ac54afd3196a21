-- Idempotent submission: a client's Idempotency-Key, per tenant, remembers the request (as a hash)
-- and the jobs it created, until it expires.
CREATE TABLE idempotency_keys (
  tenant       text NOT NULL,
  key          text NOT NULL,
  request_hash text NOT NULL,
  job_ids      jsonb NOT NULL,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant, key)
);

CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
