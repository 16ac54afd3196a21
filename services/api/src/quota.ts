import { OrchestratorError } from '@orch/core';
import type { JobStore } from '@orch/core';

/**
 * The quota on a tenant's live jobs (submitted, queued, retrying or running). Counting on every
 * submission would add a query per request on the hottest path, so each tenant's count is read at
 * most once per `refreshInMs` and advanced by what this process accepts in between: jobs that
 * finish meanwhile free room at the next refresh (the check errs on the strict side), and several
 * API replicas each re-read the shared count every `refreshInMs`.
 */
export interface TenantQuota {
  /** Takes room for `count` new jobs of `tenant`, or throws `QUOTA_EXCEEDED`. */
  reserve(tenant: string, count: number): Promise<void>;
  /** Gives back room taken by `reserve` for jobs that were not created after all. */
  release(tenant: string, count: number): void;
}

export interface TenantQuotaOptions {
  store: Pick<JobStore, 'countLiveJobs'>;
  /** 0: no quota. */
  maxLiveJobs: number;
  /** @default 1000 */
  refreshInMs?: number;
  /** @default Date.now */
  now?: () => number;
}

export function createTenantQuota(options: TenantQuotaOptions): TenantQuota {
  const { store, maxLiveJobs, refreshInMs = 1000, now = Date.now } = options;
  const counts = new Map<string, { live: number; readAt: number; reading?: Promise<void> }>();

  async function current(tenant: string): Promise<{ live: number; readAt: number }> {
    let entry = counts.get(tenant);
    if (entry && now() - entry.readAt < refreshInMs) return entry;
    if (!entry?.reading) {
      const reading = store.countLiveJobs(tenant).then(
        (live) => {
          counts.set(tenant, { live, readAt: now() });
        },
        (e: unknown) => {
          counts.delete(tenant);
          throw e;
        },
      );
      entry = { live: entry?.live ?? 0, readAt: entry?.readAt ?? 0, reading };
      counts.set(tenant, entry);
    }
    await entry.reading;
    return counts.get(tenant) ?? { live: 0, readAt: 0 };
  }

  if (maxLiveJobs === 0) return { reserve: () => Promise.resolve(), release: () => undefined };
  return {
    async reserve(tenant, count) {
      const entry = await current(tenant);
      if (entry.live + count > maxLiveJobs) {
        throw new OrchestratorError(
          'QUOTA_EXCEEDED',
          `the tenant has ${entry.live} live jobs; ${count} more would exceed its quota of ${maxLiveJobs}. ` +
            'Retry when some have finished.',
          { details: { live: entry.live, requested: count, quota: maxLiveJobs } },
        );
      }
      entry.live += count;
    },
    release(tenant, count) {
      const entry = counts.get(tenant);
      if (entry) entry.live = Math.max(0, entry.live - count);
    },
  };
}
