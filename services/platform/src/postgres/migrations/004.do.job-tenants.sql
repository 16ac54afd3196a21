-- Tenants: every job belongs to the tenant of the API key that submitted it ('' for jobs submitted
-- without authentication, including every job from before this migration).
ALTER TABLE jobs ADD COLUMN tenant text NOT NULL DEFAULT '';

-- queryJobs for one tenant: newest first, keyset on (created_at, id).
CREATE INDEX jobs_tenant_created_idx ON jobs (tenant, created_at DESC, id DESC);
-- countLiveJobs (quotas): only live jobs, which stay few while finished ones pile up.
CREATE INDEX jobs_tenant_live_idx ON jobs (tenant)
  WHERE state IN ('submitted', 'queued', 'retrying', 'running');
