import { z } from 'zod';
import { OrchestratorError } from '@orch/core';
import { batchBackendConfig, blobConfig, parseConfig, storageConfig } from '@orch/platform/runtime';

/**
 * The infrastructure's settings, from environment variables (every one optional). Names and sizes
 * are `ORCH_*`; the values the services also read (`QUEUE_LOCK_DURATION_MS`,
 * `QUEUE_MAX_DELIVERY_COUNT`, `BLOB_CONTAINER`, `AZURE_BATCH_POOL_ML`, `AZURE_BATCH_POOL_BATCH`)
 * go through the services' own schemas (`@orch/platform/runtime`), so the infrastructure gets the
 * same defaults and the same overrides as the code.
 */

const SERVICES_SCHEMA = storageConfig
  .pick({ QUEUE_LOCK_DURATION_MS: true, QUEUE_MAX_DELIVERY_COUNT: true })
  .extend(blobConfig.pick({ BLOB_CONTAINER: true }).shape)
  .extend(batchBackendConfig.pick({ AZURE_BATCH_POOL_ML: true, AZURE_BATCH_POOL_BATCH: true }).shape);

const count = (fallback: number, max: number) => z.coerce.number().int().min(0).max(max).default(fallback);
const positiveCount = (fallback: number, max: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const vmSize = (fallback: string) =>
  z
    .string()
    .regex(/^(Standard|Basic)_[A-Za-z0-9_]+$/, 'an Azure VM size such as Standard_D4ds_v5')
    .default(fallback);
/** A comma-separated list; blanks around and between entries are dropped. */
const commaList = () =>
  z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    );

/** An IPv4 address, or a range `first-last`. */
const IPV4 = String.raw`(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}`;
const IP_RANGE = new RegExp(`^${IPV4}(?:-${IPV4})?$`);
/** One entry of the API key list (`<tenant>:<sha256>[:admin]`, as services/api/src/auth.ts parses it). */
const API_KEY_ENTRY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}:[0-9a-fA-F]{64}(?::admin)?$/;

const ORCH_SCHEMA = z
  .object({
    /** The CDK for Terraform stack: cdktf.out/stacks/<name>. scripts/deploy_batch.sh reads the same variable. */
    ORCH_STACK: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-"')
      .default('orchestrator'),
    /** First part of every resource name. */
    ORCH_PREFIX: z
      .string()
      .regex(/^[a-z][a-z0-9]{1,7}$/, '2–8 lower-case letters and digits, starting with a letter')
      .default('orch'),
    /** The environment (dev, test, prod…): second part of every resource name. */
    ORCH_ENV: z
      .string()
      .regex(/^[a-z0-9]{1,6}$/, '1–6 lower-case letters and digits')
      .default('dev'),
    /** Azure region of every resource. */
    ORCH_LOCATION: z
      .string()
      .regex(/^[a-z0-9]+$/, 'a region name such as westeurope')
      .default('westeurope'),
    /**
     * Ends the globally unique names (registry, storage, Service Bus, Key Vault, PostgreSQL, Batch).
     * Default: 6 hex digits of a hash of the subscription id, prefix and environment (Terraform
     * computes it), so two subscriptions never collide and re-applying keeps the names.
     */
    ORCH_NAME_SUFFIX: z
      .string()
      .regex(/^[a-z0-9]{3,6}$/, '3–6 lower-case letters and digits')
      .optional(),
    ORCH_LOG_RETENTION_DAYS: z.coerce.number().int().min(30).max(730).default(30),
    ORCH_ACR_SKU: z.enum(['Basic', 'Standard', 'Premium']).default('Standard'),
    ORCH_AKS_KUBERNETES_VERSION: z.string().optional(),
    ORCH_AKS_SKU_TIER: z.enum(['Free', 'Standard', 'Premium']).default('Free'),
    ORCH_AKS_NODE_SIZE: vmSize('Standard_D4ds_v5'),
    /** Nodes of the AKS system pool at least… */
    ORCH_AKS_NODE_COUNT: positiveCount(2, 100),
    /** …and at most (cluster autoscaler), room for the KEDA-scaled workers. */
    ORCH_AKS_MAX_NODE_COUNT: positiveCount(5, 100),
    ORCH_SERVICEBUS_SKU: z.enum(['Standard', 'Premium']).default('Standard'),
    ORCH_STORAGE_REPLICATION: z.enum(['LRS', 'ZRS', 'GRS', 'RAGRS', 'GZRS', 'RAGZRS']).default('LRS'),
    ORCH_PG_SKU: z
      .string()
      .regex(/^(B|GP|MO)_Standard_[A-Za-z0-9_]+$/, 'a Flexible Server SKU such as B_Standard_B1ms')
      .default('B_Standard_B1ms'),
    ORCH_PG_VERSION: z.enum(['13', '14', '15', '16', '17']).default('16'),
    ORCH_PG_STORAGE_MB: z.coerce.number().int().min(32768).default(32768),
    ORCH_PG_DATABASE: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case PostgreSQL identifier')
      .default('orchestrator'),
    /**
     * The Entra administrator of the PostgreSQL server, as `psql` logs in: a user's UPN
     * (you@example.com) or a group's display name. Unset: the Terraform variable
     * `postgres_admin_name` (e.g. `TF_VAR_postgres_admin_name`) asks for it at apply time;
     * scripts/deploy_batch.sh always sets it (default: the signed-in Azure user's UPN).
     */
    ORCH_PG_ADMIN_LOGIN: z.string().min(1).optional(),
    /** Object id of that administrator. Default: whoever runs Terraform (azurerm_client_config). */
    ORCH_PG_ADMIN_OBJECT_ID: z.uuid().optional(),
    ORCH_PG_ADMIN_TYPE: z.enum(['User', 'Group', 'ServicePrincipal']).default('User'),
    /**
     * Addresses (comma-separated; `a.b.c.d` or `first-last`) allowed to reach PostgreSQL besides
     * Azure: the machine that runs scripts/deploy_batch.sh (it creates the services' roles with psql).
     */
    ORCH_ADMIN_IP_RANGES: commaList().refine(
      (ranges) => ranges.every((r) => IP_RANGE.test(r)),
      'IPv4 addresses or ranges first-last',
    ),
    /** VM size of the `batch` pool's nodes (and of the `ml` pool's, unless ORCH_BATCH_ML_VM_SIZE). */
    ORCH_BATCH_VM_SIZE: vmSize('Standard_D2s_v5'),
    ORCH_BATCH_ML_VM_SIZE: vmSize('Standard_D4s_v5'),
    /** Most dedicated nodes of each Batch pool (autoscale goes from 0 up to this). */
    ORCH_BATCH_MAX_NODES: count(4, 1000),
    ORCH_BATCH_ML_MAX_NODES: count(4, 1000),
    /** Tasks a Batch node runs at once (each task runs many jobs). */
    ORCH_BATCH_TASK_SLOTS_PER_NODE: positiveCount(1, 256),
    /** Worker images the Batch nodes pull when they start (comma-separated), e.g. the current tag. */
    ORCH_BATCH_PREFETCH_IMAGES: commaList(),
    /**
     * The API key list stored in Key Vault (`<tenant>:<sha256>[:admin]`, comma- or newline-separated;
     * hashes only, make entries with `npx orch keygen`). Unset: the secret is created with a comment
     * and Terraform never overwrites it, so set it with `az keyvault secret set`.
     */
    ORCH_API_KEYS: z
      .string()
      .optional()
      .refine(
        (v) =>
          v === undefined ||
          v
            .split(/[\n,]/)
            .map((line) => line.replace(/#.*$/, '').trim())
            .filter((line) => line.length > 0)
            .every((line) => API_KEY_ENTRY.test(line)),
        'entries <tenant>:<sha256 of the key>[:admin]; store hashes, never keys',
      ),
    /** Remote state (recommended): an existing storage account and container; Entra ID auth. */
    ORCH_TF_STATE_STORAGE_ACCOUNT: z.string().optional(),
    ORCH_TF_STATE_RESOURCE_GROUP: z.string().optional(),
    ORCH_TF_STATE_CONTAINER: z.string().default('tfstate'),
    ORCH_TF_STATE_KEY: z.string().optional(),
  })
  .superRefine((s, ctx) => {
    if (s.ORCH_AKS_MAX_NODE_COUNT < s.ORCH_AKS_NODE_COUNT) {
      ctx.addIssue({ code: 'custom', path: ['ORCH_AKS_MAX_NODE_COUNT'], message: 'less than ORCH_AKS_NODE_COUNT' });
    }
    if (s.ORCH_TF_STATE_STORAGE_ACCOUNT && !s.ORCH_TF_STATE_RESOURCE_GROUP) {
      ctx.addIssue({
        code: 'custom',
        path: ['ORCH_TF_STATE_RESOURCE_GROUP'],
        message: 'required with ORCH_TF_STATE_STORAGE_ACCOUNT',
      });
    }
  });

/** Service Bus accepts a lock duration from 5 s to 5 min. */
const MIN_LOCK_DURATION_MS = 5_000;
const MAX_LOCK_DURATION_MS = 300_000;

export interface InfraSettings {
  stackName: string;
  prefix: string;
  environment: string;
  location: string;
  nameSuffix: string | undefined;
  logRetentionDays: number;
  acrSku: string;
  aks: {
    kubernetesVersion: string | undefined;
    skuTier: string;
    nodeSize: string;
    minNodes: number;
    maxNodes: number;
  };
  serviceBus: { sku: 'Standard' | 'Premium'; lockDurationInMs: number; maxDeliveryCount: number };
  storage: { replication: string; container: string };
  postgres: {
    sku: string;
    version: string;
    storageMb: number;
    database: string;
    adminLogin: string | undefined;
    adminObjectId: string | undefined;
    adminType: string;
    allowedIpRanges: readonly string[];
  };
  batch: {
    pools: readonly BatchPoolSettings[];
    taskSlotsPerNode: number;
    prefetchImages: readonly string[];
  };
  apiKeys: string | undefined;
  state:
    | { kind: 'local' }
    | { kind: 'azurerm'; storageAccount: string; resourceGroup: string; container: string; key: string };
}

export interface BatchPoolSettings {
  /** The pool's id in the Batch account: what the batch submitter's AZURE_BATCH_POOL_<POOL> names. */
  name: string;
  /** Which pool queue it serves. */
  queue: 'ml-jobs' | 'batch-jobs';
  vmSize: string;
  maxNodes: number;
}

/** Parses the environment; throws `CONFIG_INVALID` naming every bad variable. */
export function loadInfraSettings(env: Record<string, string | undefined>): InfraSettings {
  const code = parseConfig(SERVICES_SCHEMA, env);
  const s = parseConfig(ORCH_SCHEMA, env);
  const lock = code.QUEUE_LOCK_DURATION_MS;
  if (lock < MIN_LOCK_DURATION_MS || lock > MAX_LOCK_DURATION_MS) {
    throw new OrchestratorError(
      'CONFIG_INVALID',
      `invalid configuration: QUEUE_LOCK_DURATION_MS: Service Bus allows ${MIN_LOCK_DURATION_MS} to ${MAX_LOCK_DURATION_MS}, got ${lock}`,
    );
  }
  return {
    stackName: s.ORCH_STACK,
    prefix: s.ORCH_PREFIX,
    environment: s.ORCH_ENV,
    location: s.ORCH_LOCATION,
    nameSuffix: s.ORCH_NAME_SUFFIX,
    logRetentionDays: s.ORCH_LOG_RETENTION_DAYS,
    acrSku: s.ORCH_ACR_SKU,
    aks: {
      kubernetesVersion: s.ORCH_AKS_KUBERNETES_VERSION,
      skuTier: s.ORCH_AKS_SKU_TIER,
      nodeSize: s.ORCH_AKS_NODE_SIZE,
      minNodes: s.ORCH_AKS_NODE_COUNT,
      maxNodes: s.ORCH_AKS_MAX_NODE_COUNT,
    },
    serviceBus: {
      sku: s.ORCH_SERVICEBUS_SKU,
      lockDurationInMs: lock,
      maxDeliveryCount: code.QUEUE_MAX_DELIVERY_COUNT,
    },
    storage: { replication: s.ORCH_STORAGE_REPLICATION, container: code.BLOB_CONTAINER },
    postgres: {
      sku: s.ORCH_PG_SKU,
      version: s.ORCH_PG_VERSION,
      storageMb: s.ORCH_PG_STORAGE_MB,
      database: s.ORCH_PG_DATABASE,
      adminLogin: s.ORCH_PG_ADMIN_LOGIN,
      adminObjectId: s.ORCH_PG_ADMIN_OBJECT_ID,
      adminType: s.ORCH_PG_ADMIN_TYPE,
      allowedIpRanges: s.ORCH_ADMIN_IP_RANGES,
    },
    batch: {
      pools: [
        {
          name: code.AZURE_BATCH_POOL_ML,
          queue: 'ml-jobs',
          vmSize: s.ORCH_BATCH_ML_VM_SIZE,
          maxNodes: s.ORCH_BATCH_ML_MAX_NODES,
        },
        {
          name: code.AZURE_BATCH_POOL_BATCH,
          queue: 'batch-jobs',
          vmSize: s.ORCH_BATCH_VM_SIZE,
          maxNodes: s.ORCH_BATCH_MAX_NODES,
        },
      ],
      taskSlotsPerNode: s.ORCH_BATCH_TASK_SLOTS_PER_NODE,
      prefetchImages: s.ORCH_BATCH_PREFETCH_IMAGES,
    },
    apiKeys: s.ORCH_API_KEYS,
    state: s.ORCH_TF_STATE_STORAGE_ACCOUNT
      ? {
          kind: 'azurerm',
          storageAccount: s.ORCH_TF_STATE_STORAGE_ACCOUNT,
          resourceGroup: s.ORCH_TF_STATE_RESOURCE_GROUP ?? '',
          container: s.ORCH_TF_STATE_CONTAINER,
          key: s.ORCH_TF_STATE_KEY ?? `${s.ORCH_STACK}.tfstate`,
        }
      : { kind: 'local' },
  };
}
