import type { PoolQueue, Priority } from './job/job.ts';

/**
 * The single source of queue names: the services, the infrastructure and the manifests all read
 * them from here.
 */
export const INGEST_QUEUE = 'jobqueue';

export const POOL_QUEUES: readonly PoolQueue[] = ['actor-jobs', 'spark-jobs', 'ml-jobs', 'batch-jobs'];

/** Pools whose workers run on AKS, and pools forwarded to Azure Batch. */
export const AKS_POOL_QUEUES: readonly PoolQueue[] = ['actor-jobs', 'spark-jobs'];
export const BATCH_POOL_QUEUES: readonly PoolQueue[] = ['ml-jobs', 'batch-jobs'];

/**
 * Dispatch classes. Each pool queue has one lane per class, and consumers always take from the
 * `high` lane first, so queued urgent/high jobs start before queued normal/low ones. Lanes are
 * plain queues, which is what makes this work on every transport.
 */
export type DispatchClass = 'high' | 'standard';

export const dispatchClassOf = (priority: Priority): DispatchClass =>
  priority === 'urgent' || priority === 'high' ? 'high' : 'standard';

/** The physical queue of a pool's lane: the pool's own name for `standard`, `<pool>-high` for `high`. */
export const laneQueue = (pool: PoolQueue, dispatchClass: DispatchClass): string =>
  dispatchClass === 'high' ? `${pool}-high` : pool;

/** A pool's lanes, in the order consumers drain them. */
export const lanesOf = (pool: PoolQueue): readonly { dispatchClass: DispatchClass; queue: string }[] => [
  { dispatchClass: 'high', queue: laneQueue(pool, 'high') },
  { dispatchClass: 'standard', queue: laneQueue(pool, 'standard') },
];

/**
 * The ingest queue's lanes, in the order the scheduler drains them: urgent and high submissions
 * (`jobqueue-high`) are classified before the normal and low ones waiting in `jobqueue`.
 */
export const INGEST_LANES: readonly { dispatchClass: DispatchClass; queue: string }[] = [
  { dispatchClass: 'high', queue: `${INGEST_QUEUE}-high` },
  { dispatchClass: 'standard', queue: INGEST_QUEUE },
];

/** The ingest lane of a submission of this priority. */
export const ingestLaneOf = (priority: Priority): string =>
  dispatchClassOf(priority) === 'high' ? `${INGEST_QUEUE}-high` : INGEST_QUEUE;

/** Every physical queue the system uses (the ingest lanes and all pool lanes). */
export const PHYSICAL_QUEUES: readonly string[] = [
  ...INGEST_LANES.map((lane) => lane.queue),
  ...POOL_QUEUES.flatMap((pool) => lanesOf(pool).map((lane) => lane.queue)),
];

export const isPoolQueue = (name: string): name is PoolQueue => (POOL_QUEUES as readonly string[]).includes(name);
