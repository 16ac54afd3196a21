import { AKS_POOL_QUEUES, BATCH_POOL_QUEUES, INGEST_LANES, lanesOf, PHYSICAL_QUEUES } from '@orch/core';
import type { PoolQueue } from '@orch/core';

/**
 * Who may do what: each service's identity gets exactly the data-plane roles its code uses, on
 * exactly the queues, container, Batch account and secret it touches (never a resource group or a
 * subscription, never Owner, Contributor or User Access Administrator). The queue names come from
 * `@orch/core`, the single source the services read them from.
 */

/** The services: Kubernetes service account (k8s/base, namespace orchestrator) = identity = output key. */
export const SERVICES = ['api', 'scheduler', 'actor-worker', 'spark-worker', 'batch-submitter'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Where the services run (k8s/base/namespace.yaml). */
export const K8S_NAMESPACE = 'orchestrator';
/** The service account of the AKS KEDA add-on's operator, which reads queue depth for the ScaledObjects. */
export const KEDA_SERVICE_ACCOUNT = { namespace: 'kube-system', name: 'keda-operator' } as const;

export const serviceAccountSubject = (namespace: string, name: string): string =>
  `system:serviceaccount:${namespace}:${name}`;

export type QueueRole =
  'Azure Service Bus Data Sender' | 'Azure Service Bus Data Receiver' | 'Azure Service Bus Data Owner';
export type BlobRole = 'Storage Blob Data Reader' | 'Storage Blob Data Contributor';

export interface QueueGrant {
  role: QueueRole;
  queues: readonly string[];
  /** Which code needs it. */
  why: string;
}

export interface ServiceAccess {
  queues: readonly QueueGrant[];
  /** On the results container; none for a service that never opens the blob store. */
  blob?: BlobRole;
  /** On the Batch account. */
  batch?: 'Azure Batch Job Submitter';
  /** On the API keys secret only. */
  apiKeysSecret?: 'Key Vault Secrets User';
}

const lanes = (pools: readonly PoolQueue[]): string[] =>
  pools.flatMap((pool) => lanesOf(pool).map((lane) => lane.queue));
const INGEST = INGEST_LANES.map((lane) => lane.queue);

/**
 * Reading a queue's depth (`getQueueRuntimeProperties`) needs Manage rights, which only
 * Azure Service Bus Data Owner grants among the built-in roles; it is scoped to each queue read,
 * never to the namespace.
 */
export const ACCESS: Readonly<Record<ServiceName, ServiceAccess>> = {
  api: {
    queues: [
      { role: 'Azure Service Bus Data Sender', queues: INGEST, why: 'POST /submit-job dispatches to the ingest lanes' },
      {
        role: 'Azure Service Bus Data Owner',
        queues: PHYSICAL_QUEUES,
        why: 'GET /queues/status, /metrics and /readyz read queue depth (runtime properties need Manage)',
      },
    ],
    // Contributor, not Reader: at start-up the blob adapter creates the container when it is
    // missing (createIfNotExists), which Reader refuses; the api itself only downloads results.
    blob: 'Storage Blob Data Contributor',
    apiKeysSecret: 'Key Vault Secrets User',
  },
  scheduler: {
    queues: [
      { role: 'Azure Service Bus Data Receiver', queues: INGEST, why: 'classifies jobs from the ingest lanes' },
      {
        role: 'Azure Service Bus Data Sender',
        queues: PHYSICAL_QUEUES,
        why: 'dispatches to the pool lanes; the reconciler re-dispatches unconfirmed jobs to any lane, ingest included',
      },
    ],
    // No blob role: the scheduler never opens the blob store.
  },
  'actor-worker': {
    queues: [
      { role: 'Azure Service Bus Data Receiver', queues: lanes(['actor-jobs']), why: 'runs the actor pool' },
      { role: 'Azure Service Bus Data Sender', queues: lanes(['actor-jobs']), why: 'schedules its retries' },
    ],
    blob: 'Storage Blob Data Contributor',
  },
  'spark-worker': {
    queues: [
      { role: 'Azure Service Bus Data Receiver', queues: lanes(['spark-jobs']), why: 'runs the spark pool' },
      { role: 'Azure Service Bus Data Sender', queues: lanes(['spark-jobs']), why: 'schedules its retries' },
    ],
    blob: 'Storage Blob Data Contributor',
  },
  'batch-submitter': {
    queues: [
      {
        role: 'Azure Service Bus Data Receiver',
        queues: lanes(BATCH_POOL_QUEUES),
        why: 'groups ml/batch jobs into tasks',
      },
      { role: 'Azure Service Bus Data Sender', queues: lanes(BATCH_POOL_QUEUES), why: 'schedules retries' },
    ],
    blob: 'Storage Blob Data Contributor',
    batch: 'Azure Batch Job Submitter',
  },
};

/** KEDA reads the depth of the AKS pools' lanes (the ScaledObjects' triggers) and nothing else. */
export const KEDA_QUEUES: readonly string[] = lanes(AKS_POOL_QUEUES);
