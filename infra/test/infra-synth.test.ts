import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Testing } from 'cdktf';
import { AKS_POOL_QUEUES, BATCH_POOL_QUEUES, INGEST_LANES, lanesOf, PHYSICAL_QUEUES, POOL_SCALING } from '@orch/core';
import type { PoolQueue } from '@orch/core';
import { batchBackendConfig, blobConfig, storageConfig } from '@orch/platform/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { isoDuration, OrchestratorStack } from '../src/orchestrator-stack.ts';
import { loadInfraSettings } from '../src/settings.ts';

/**
 * The CDK for Terraform app, synthesized in-process, checked against the code it deploys: queue and
 * container names and queue settings from @orch/core and the services' config schemas, federated
 * subjects from the k8s/base service accounts, outputs from what scripts/deploy_batch.sh reads, and
 * least privilege on every role assignment.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Block = Record<string, unknown>;
interface Synthesized {
  resource: Record<string, Record<string, Block>>;
  output: Record<string, { value: unknown }>;
  variable?: Record<string, Block>;
  terraform: Block;
}

function synth(env: Record<string, string | undefined> = {}): Synthesized {
  const app = Testing.app();
  const stack = new OrchestratorStack(app, loadInfraSettings(env));
  return JSON.parse(Testing.synth(stack)) as Synthesized;
}

const tf = synth();
const resources = (type: string): Block[] => Object.values(tf.resource[type] ?? {});
const one = (type: string): Block => {
  const list = resources(type);
  expect(list).toHaveLength(1);
  return list[0] as Block;
};
const ref = (type: string, predicate: (block: Block) => boolean, attribute = 'id'): string => {
  const entry = Object.entries(tf.resource[type] ?? {}).find(([, block]) => predicate(block));
  if (!entry) throw new Error(`no ${type} matches`);
  return `\${${type}.${entry[0]}.${attribute}}`;
};

interface Assignment {
  role_definition_name: string;
  scope: string;
  principal_id: string;
}
const assignments = resources('azurerm_role_assignment') as unknown as Assignment[];

/** Service accounts of k8s/base (namespace from its kustomization). */
function k8sServiceAccounts(): { namespace: string; names: string[] } {
  const dir = join(ROOT, 'k8s/base');
  const kustomization = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as {
    namespace: string;
  };
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const document of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const object = document.toJS() as { kind?: string; metadata?: { name?: string } } | null;
      if (object?.kind === 'ServiceAccount' && object.metadata?.name) names.push(object.metadata.name);
    }
  }
  return { namespace: kustomization.namespace, names: names.sort() };
}

const principalOf = (service: string): string =>
  ref('azurerm_user_assigned_identity', (b) => String(b.name).endsWith(`-${service}`), 'principal_id');
const queueRef = (name: string): string => ref('azurerm_servicebus_queue', (b) => b.name === name);
const containerRef = ref('azurerm_storage_container', () => true);
/** The (role, scope) pairs granted to a principal, sorted. */
const grantsOf = (principal: string): string[] =>
  assignments
    .filter((a) => a.principal_id === principal)
    .map((a) => `${a.role_definition_name} @ ${a.scope}`)
    .sort();
const on = (role: string, scopes: readonly string[]): string[] => scopes.map((scope) => `${role} @ ${scope}`);
const lanes = (pools: readonly PoolQueue[]): string[] => pools.flatMap((pool) => lanesOf(pool).map((l) => l.queue));

describe('Service Bus', () => {
  const codeDefaults = storageConfig.parse({});

  it('has exactly the physical queues of @orch/core', () => {
    expect(
      resources('azurerm_servicebus_queue')
        .map((q) => q.name)
        .sort(),
    ).toEqual([...PHYSICAL_QUEUES].sort());
    expect(PHYSICAL_QUEUES).toHaveLength(10);
  });

  it('gives every queue the lock duration and delivery count of the code, and dead-letters expired messages', () => {
    for (const queue of resources('azurerm_servicebus_queue')) {
      expect(queue).toMatchObject({
        lock_duration: isoDuration(codeDefaults.QUEUE_LOCK_DURATION_MS),
        max_delivery_count: codeDefaults.QUEUE_MAX_DELIVERY_COUNT,
        dead_lettering_on_message_expiration: true,
        namespace_id: ref('azurerm_servicebus_namespace', () => true),
      });
    }
  });

  it('takes overrides of the services’ queue settings, and refuses a lock Service Bus does not allow', () => {
    const custom = synth({ QUEUE_LOCK_DURATION_MS: '90000', QUEUE_MAX_DELIVERY_COUNT: '5' });
    for (const queue of Object.values(custom.resource.azurerm_servicebus_queue ?? {})) {
      expect(queue).toMatchObject({ lock_duration: 'PT1M30S', max_delivery_count: 5 });
    }
    expect(() => loadInfraSettings({ QUEUE_LOCK_DURATION_MS: '600000' })).toThrow(/QUEUE_LOCK_DURATION_MS/);
  });

  it.each([
    [60_000, 'PT1M'],
    [300_000, 'PT5M'],
    [30_000, 'PT30S'],
    [5_000, 'PT5S'],
    [150_000, 'PT2M30S'],
    [1_500, 'PT1.5S'],
    [3_600_000, 'PT1H'],
    [90_061_000, 'P1DT1H1M1S'],
    [86_400_000, 'P1D'],
    [0, 'PT0S'],
  ])('writes %i ms as %s, the canonical form Azure reads back (no perpetual plan diff)', (ms, iso) => {
    expect(isoDuration(ms)).toBe(iso);
  });

  it('is a Standard namespace with shared access keys disabled', () => {
    expect(one('azurerm_servicebus_namespace')).toMatchObject({
      sku: 'Standard',
      local_auth_enabled: false,
      minimum_tls_version: '1.2',
    });
  });
});

describe('Blob Storage', () => {
  it('has the container the services use (BLOB_CONTAINER), private', () => {
    expect(one('azurerm_storage_container')).toMatchObject({
      name: blobConfig.shape.BLOB_CONTAINER.parse(undefined),
      container_access_type: 'private',
    });
    expect(one('azurerm_storage_container').name).toBe('results');
  });

  it('requires TLS 1.2 and HTTPS, allows no public blobs and no shared keys', () => {
    expect(one('azurerm_storage_account')).toMatchObject({
      min_tls_version: 'TLS1_2',
      https_traffic_only_enabled: true,
      allow_nested_items_to_be_public: false,
      shared_access_key_enabled: false,
    });
  });
});

describe('PostgreSQL', () => {
  it('authenticates with Entra ID only, with an Entra administrator and the database', () => {
    expect(one('azurerm_postgresql_flexible_server')).toMatchObject({
      authentication: { active_directory_auth_enabled: true, password_auth_enabled: false },
    });
    expect(one('azurerm_postgresql_flexible_server')).not.toHaveProperty('administrator_password');
    expect(one('azurerm_postgresql_flexible_server_active_directory_administrator')).toMatchObject({
      object_id: '${data.azurerm_client_config.current.object_id}',
      principal_type: 'User',
    });
    expect(one('azurerm_postgresql_flexible_server_database').name).toBe('orchestrator');
  });

  it('asks for the administrator login at apply time unless ORCH_PG_ADMIN_LOGIN names it', () => {
    expect(tf.variable).toHaveProperty('postgres_admin_name');
    const named = synth({ ORCH_PG_ADMIN_LOGIN: 'orch-admins', ORCH_PG_ADMIN_TYPE: 'Group' });
    expect(named.variable).toBeUndefined();
    expect(named.output.postgres_admin_login?.value).toBe('orch-admins');
  });
});

describe('AKS', () => {
  it('has the OIDC issuer, workload identity, the KEDA add-on, the CSI secrets driver and Container Insights', () => {
    expect(one('azurerm_kubernetes_cluster')).toMatchObject({
      oidc_issuer_enabled: true,
      workload_identity_enabled: true,
      workload_autoscaler_profile: { keda_enabled: true },
      key_vault_secrets_provider: { secret_rotation_enabled: true },
      oms_agent: { log_analytics_workspace_id: ref('azurerm_log_analytics_workspace', () => true) },
      network_profile: { network_policy: 'cilium' },
    });
  });

  it('sizes the node pool from the environment', () => {
    const custom = synth({
      ORCH_AKS_NODE_SIZE: 'Standard_D8ds_v5',
      ORCH_AKS_NODE_COUNT: '3',
      ORCH_AKS_MAX_NODE_COUNT: '9',
    });
    expect(Object.values(custom.resource.azurerm_kubernetes_cluster ?? {})[0]).toMatchObject({
      default_node_pool: { vm_size: 'Standard_D8ds_v5', min_count: 3, max_count: 9, auto_scaling_enabled: true },
    });
    expect(() => loadInfraSettings({ ORCH_AKS_NODE_COUNT: '4', ORCH_AKS_MAX_NODE_COUNT: '2' })).toThrow(
      /ORCH_AKS_MAX_NODE_COUNT/,
    );
  });
});

describe('Azure Batch', () => {
  const poolNames = batchBackendConfig.parse({});

  it('has the ml and batch pools the batch submitter names, autoscaled from pending tasks down to zero', () => {
    const pools = resources('azurerm_batch_pool');
    expect(pools.map((p) => p.name).sort()).toEqual(
      [poolNames.AZURE_BATCH_POOL_BATCH, poolNames.AZURE_BATCH_POOL_ML].sort(),
    );
    for (const pool of pools) {
      const autoScale = pool.auto_scale as { formula: string; evaluation_interval: string };
      expect(autoScale.formula).toContain('$PendingTasks');
      expect(autoScale.formula).toMatch(/\$TargetDedicatedNodes = max\(0, min\(\$targetVMs, 4\)\)/);
      expect(autoScale.formula).toContain('$NodeDeallocationOption = taskcompletion');
      expect(pool).not.toHaveProperty('fixed_scale');
    }
  });

  it('runs tasks in containers pulled from the registry with the pools’ identity', () => {
    const identity = ref('azurerm_user_assigned_identity', (b) => String(b.name).endsWith('-batch-task'));
    for (const pool of resources('azurerm_batch_pool')) {
      expect(pool).toMatchObject({
        container_configuration: {
          type: 'DockerCompatible',
          container_registries: [
            {
              registry_server: ref('azurerm_container_registry', () => true, 'login_server'),
              user_assigned_identity_id: identity,
            },
          ],
        },
        identity: { type: 'UserAssigned', identity_ids: [identity] },
      });
    }
  });

  it('takes VM sizes and maximum nodes from the environment', () => {
    const custom = synth({ ORCH_BATCH_VM_SIZE: 'Standard_F4s_v2', ORCH_BATCH_MAX_NODES: '12' });
    const batch = Object.values(custom.resource.azurerm_batch_pool ?? {}).find((p) => p.name === 'batch');
    expect(batch).toMatchObject({ vm_size: 'Standard_F4s_v2' });
    expect((batch?.auto_scale as { formula: string }).formula).toContain('min($targetVMs, 12)');
  });

  it('accepts Entra ID only', () => {
    expect(one('azurerm_batch_account')).toMatchObject({ allowed_authentication_modes: ['AAD'] });
  });
});

describe('identities', () => {
  const { namespace, names } = k8sServiceAccounts();
  const issuer = ref('azurerm_kubernetes_cluster', () => true, 'oidc_issuer_url');

  it('federates one identity per k8s/base service account, with its exact subject', () => {
    expect(names).toEqual(['actor-worker', 'api', 'batch-submitter', 'scheduler', 'spark-worker']);
    const credentials = resources('azurerm_federated_identity_credential');
    for (const name of names) {
      const identity = ref('azurerm_user_assigned_identity', (b) => String(b.name).endsWith(`-${name}`));
      expect(credentials).toContainEqual(
        expect.objectContaining({
          parent_id: identity,
          subject: `system:serviceaccount:${namespace}:${name}`,
          issuer,
          audience: ['api://AzureADTokenExchange'],
        }),
      );
    }
  });

  it('federates KEDA’s identity with the KEDA add-on operator', () => {
    expect(resources('azurerm_federated_identity_credential')).toContainEqual(
      expect.objectContaining({
        parent_id: ref('azurerm_user_assigned_identity', (b) => String(b.name).endsWith('-keda')),
        subject: 'system:serviceaccount:kube-system:keda-operator',
        issuer,
      }),
    );
    expect(resources('azurerm_federated_identity_credential')).toHaveLength(names.length + 1);
  });
});

describe('role assignments', () => {
  it('are all scoped to one resource of this stack, never a subscription or resource group', () => {
    expect(assignments.length).toBeGreaterThan(0);
    for (const { scope } of assignments) {
      expect(scope).toMatch(/^\$\{azurerm_[a-z_]+\.[a-z0-9_]+\.(id|resource_versionless_id)\}$/);
      expect(scope).not.toMatch(/subscription|resource_group/);
    }
  });

  it('never grant Owner, Contributor or User Access Administrator', () => {
    const forbidden = ['Owner', 'Contributor', 'User Access Administrator', 'Role Based Access Control Administrator'];
    for (const { role_definition_name: role } of assignments) expect(forbidden).not.toContain(role);
  });

  it('give the api: Sender on the ingest lanes, depth (Data Owner) per queue, the results container, the API keys secret', () => {
    expect(grantsOf(principalOf('api'))).toEqual(
      [
        ...on(
          'Azure Service Bus Data Sender',
          INGEST_LANES.map((l) => queueRef(l.queue)),
        ),
        ...on('Azure Service Bus Data Owner', PHYSICAL_QUEUES.map(queueRef)),
        ...on('Storage Blob Data Contributor', [containerRef]),
        ...on('Key Vault Secrets User', [ref('azurerm_key_vault_secret', () => true, 'resource_versionless_id')]),
      ].sort(),
    );
  });

  it('give the scheduler: Receiver on the ingest lanes, Sender on every lane (dispatch and re-dispatch)', () => {
    expect(grantsOf(principalOf('scheduler'))).toEqual(
      [
        ...on(
          'Azure Service Bus Data Receiver',
          INGEST_LANES.map((l) => queueRef(l.queue)),
        ),
        ...on('Azure Service Bus Data Sender', PHYSICAL_QUEUES.map(queueRef)),
      ].sort(),
    );
  });

  it.each([
    ['actor-worker', 'actor-jobs'],
    ['spark-worker', 'spark-jobs'],
  ] as const)(
    'give the %s: Receiver and Sender (retries) on its own lanes, and the results container',
    (service, pool) => {
      const own = lanes([pool]).map(queueRef);
      expect(grantsOf(principalOf(service))).toEqual(
        [
          ...on('Azure Service Bus Data Receiver', own),
          ...on('Azure Service Bus Data Sender', own),
          ...on('Storage Blob Data Contributor', [containerRef]),
        ].sort(),
      );
    },
  );

  it('give the batch submitter: its lanes, the results container and Job Submitter on the Batch account', () => {
    const own = lanes(BATCH_POOL_QUEUES).map(queueRef);
    expect(grantsOf(principalOf('batch-submitter'))).toEqual(
      [
        ...on('Azure Service Bus Data Receiver', own),
        ...on('Azure Service Bus Data Sender', own),
        ...on('Storage Blob Data Contributor', [containerRef]),
        ...on('Azure Batch Job Submitter', [ref('azurerm_batch_account', () => true)]),
      ].sort(),
    );
  });

  it('give KEDA depth reads (Data Owner) on exactly the lanes its ScaledObjects watch', () => {
    expect(Object.keys(POOL_SCALING).sort()).toEqual([...AKS_POOL_QUEUES].sort());
    expect(grantsOf(principalOf('keda'))).toEqual(
      on('Azure Service Bus Data Owner', lanes(AKS_POOL_QUEUES).map(queueRef)).sort(),
    );
  });

  it('let the registry be pulled by the AKS nodes and the Batch pools only', () => {
    const registry = ref('azurerm_container_registry', () => true);
    const pulls = assignments.filter((a) => a.scope === registry);
    expect(pulls.map((a) => a.role_definition_name)).toEqual(['AcrPull', 'AcrPull']);
    expect(pulls.map((a) => a.principal_id).sort()).toEqual(
      ['${azurerm_kubernetes_cluster.aks.kubelet_identity[0].object_id}', principalOf('batch-task')].sort(),
    );
    expect(grantsOf(principalOf('batch-task'))).toEqual(
      [...on('AcrPull', [registry]), ...on('Storage Blob Data Contributor', [containerRef])].sort(),
    );
  });

  it('let only the api read the Key Vault, whose RBAC the deployer writes the secret through', () => {
    const vault = ref('azurerm_key_vault', () => true);
    const secret = ref('azurerm_key_vault_secret', () => true, 'resource_versionless_id');
    const onVault = assignments.filter((a) => a.scope === vault || a.scope === secret);
    expect(onVault.map((a) => [a.role_definition_name, a.principal_id]).sort()).toEqual(
      [
        ['Key Vault Secrets Officer', '${data.azurerm_client_config.current.object_id}'],
        ['Key Vault Secrets User', principalOf('api')],
      ].sort(),
    );
    expect(one('azurerm_key_vault')).toMatchObject({ rbac_authorization_enabled: true });
    expect(one('azurerm_key_vault_secret')).toMatchObject({ name: 'api-keys' });
  });
});

describe('outputs', () => {
  /** Every `output NAME [KEY…]` the deploy script reads. */
  function outputsReadByDeployScript(): { name: string; keys: string[] }[] {
    const script = readFileSync(join(ROOT, 'scripts/deploy_batch.sh'), 'utf8');
    const services = /readonly SERVICES=\(([^)]*)\)/.exec(script)?.[1]?.trim().split(/\s+/) ?? [];
    const reads: { name: string; keys: string[] }[] = [];
    for (const match of script.matchAll(/\$\(output ([^)]+)\)/g)) {
      const [name = '', ...keys] = (match[1] ?? '').trim().split(/\s+/);
      if (keys.includes('"$service"')) {
        for (const service of services) reads.push({ name, keys: keys.map((k) => (k === '"$service"' ? service : k)) });
      } else {
        reads.push({ name, keys });
      }
    }
    return reads;
  }

  it('include every output scripts/deploy_batch.sh reads, with every key it reads', () => {
    const reads = outputsReadByDeployScript();
    expect(reads.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        'resource_group_name',
        'workload_identities',
        'keda_identity_client_id',
        'postgres_fqdn',
        'key_vault_name',
        'tenant_id',
      ]),
    );
    expect(new Set(reads.map((r) => r.name)).size).toBe(18);
    for (const { name, keys } of reads) {
      expect(tf.output, name).toHaveProperty([name]);
      let value: unknown = tf.output[name]?.value;
      for (const key of keys) value = (value as Record<string, unknown>)[key];
      // A string that Terraform fills in (or a constant), never a nested object.
      expect(value, [name, ...keys].join('.')).toMatch(/\S/);
    }
  });

  it('name the code’s container and pools, and the fully qualified Service Bus namespace', () => {
    expect(tf.output.blob_container?.value).toBe(ref('azurerm_storage_container', () => true, 'name'));
    expect(tf.output.batch_pool_ml?.value).toBe('${azurerm_batch_pool.pool_ml.name}');
    expect(tf.output.batch_pool_batch?.value).toBe('${azurerm_batch_pool.pool_batch.name}');
    expect(tf.output.servicebus_namespace?.value).toBe(
      '${azurerm_servicebus_namespace.servicebus.name}.servicebus.windows.net',
    );
    expect(tf.output).toHaveProperty('key_vault_name');
    expect(tf.output).toHaveProperty('key_vault_uri');
    expect(tf.output).toHaveProperty('tenant_id');
  });
});

describe('settings', () => {
  it('name resources from ORCH_PREFIX and ORCH_ENV in ORCH_LOCATION', () => {
    const custom = synth({
      ORCH_PREFIX: 'acme',
      ORCH_ENV: 'prod',
      ORCH_LOCATION: 'northeurope',
      ORCH_NAME_SUFFIX: 'x1' + 'y2',
    });
    expect(Object.values(custom.resource.azurerm_resource_group ?? {})[0]).toMatchObject({
      name: 'acme-prod-rg',
      location: 'northeurope',
    });
    expect(Object.values(custom.resource.azurerm_storage_account ?? {})[0]).toMatchObject({ name: 'acmeprodx1y2' });
    expect(Object.values(custom.resource.azurerm_key_vault ?? {})[0]).toMatchObject({ name: 'acme-prod-x1y2' });
  });

  it('reject invalid values, naming the variable', () => {
    expect(() => loadInfraSettings({ ORCH_PREFIX: 'Not-Valid' })).toThrow(/ORCH_PREFIX/);
    expect(() => loadInfraSettings({ ORCH_API_KEYS: 'team:not-a-hash' })).toThrow(/ORCH_API_KEYS/);
    expect(() => loadInfraSettings({ ORCH_ADMIN_IP_RANGES: '10.0.0.1,nope' })).toThrow(/ORCH_ADMIN_IP_RANGES/);
  });

  it('keep state in an Azure storage account when ORCH_TF_STATE_STORAGE_ACCOUNT is set, else next to the repository', () => {
    expect(tf.terraform.backend).toEqual({ local: { path: '../../../terraform.orchestrator.tfstate' } });
    const remote = synth({ ORCH_TF_STATE_STORAGE_ACCOUNT: 'tfstate123', ORCH_TF_STATE_RESOURCE_GROUP: 'tfstate-rg' });
    expect(remote.terraform.backend).toEqual({
      azurerm: {
        storage_account_name: 'tfstate123',
        resource_group_name: 'tfstate-rg',
        container_name: 'tfstate',
        key: 'orchestrator.tfstate',
        use_azuread_auth: true,
      },
    });
  });
});

describe('npm run infra:synth (node infra/src/main.ts), the app of cdktf.json', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'orch-cdktf-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('writes cdktf.out/stacks/<ORCH_STACK>/cdk.tf.json', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'infra/src/main.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ORCH_CDKTF_OUTDIR: outdir, ORCH_STACK: 'staging' },
    });
    expect(result.status, result.stderr).toBe(0);
    const file = join(outdir, 'stacks/staging/cdk.tf.json');
    expect(existsSync(file)).toBe(true);
    const written = JSON.parse(readFileSync(file, 'utf8')) as Synthesized;
    expect(Object.keys(written.resource.azurerm_servicebus_queue ?? {})).toHaveLength(PHYSICAL_QUEUES.length);
  });

  it("given cdktf.json's app and a system node first on PATH, then the app runs under the project's Node", () => {
    // What the cdktf CLI does: run `app` in a shell, with CDKTF_OUTDIR set. A stand-in for a system
    // Node that cannot run .ts files (Debian's 20) refuses them, and runs anything else (npm).
    const { app } = JSON.parse(readFileSync(join(ROOT, 'cdktf.json'), 'utf8')) as { app: string };
    const systemNode = join(outdir, 'system-node');
    mkdirSync(systemNode);
    writeFileSync(
      join(systemNode, 'node'),
      `#!/bin/sh\ncase "$*" in *.ts*) echo "system node cannot run $*" >&2; exit 97;; esac\nexec '${process.execPath}' "$@"\n`,
    );
    chmodSync(join(systemNode, 'node'), 0o755);
    const path = (process.env.PATH ?? '').split(':').filter((dir) => !dir.includes('node_modules'));
    const result = spawnSync('sh', ['-c', app], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        PATH: [systemNode, ...path].join(':'),
        CDKTF_OUTDIR: join(outdir, 'cli'),
        ORCH_CDKTF_OUTDIR: '',
        ORCH_STACK: 'cli',
      },
    });
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(outdir, 'cli/stacks/cli/cdk.tf.json'))).toBe(true);
  });

  it('fails with the name of a bad variable and writes nothing', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'infra/src/main.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ORCH_CDKTF_OUTDIR: join(outdir, 'bad'), ORCH_SERVICEBUS_SKU: 'Basic' },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('ORCH_SERVICEBUS_SKU');
    expect(existsSync(join(outdir, 'bad'))).toBe(false);
  });
});
