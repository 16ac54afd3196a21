import { PHYSICAL_QUEUES } from '@orch/core';
import { ACCESS, K8S_NAMESPACE, KEDA_QUEUES, KEDA_SERVICE_ACCOUNT, SERVICES, serviceAccountSubject } from './access.ts';
import type { ServiceName } from './access.ts';
import {
  AzurermBackend,
  AzurermProvider,
  BatchAccount,
  BatchPool,
  ContainerRegistry,
  DataAzurermClientConfig,
  FederatedIdentityCredential,
  Fn,
  KeyVault,
  KeyVaultSecret,
  KubernetesCluster,
  LocalBackend,
  LogAnalyticsWorkspace,
  PostgresqlFlexibleServer,
  PostgresqlFlexibleServerActiveDirectoryAdministrator,
  PostgresqlFlexibleServerDatabase,
  PostgresqlFlexibleServerFirewallRule,
  ResourceGroup,
  RoleAssignment,
  ServicebusNamespace,
  ServicebusQueue,
  StorageAccount,
  StorageContainer,
  TerraformLocal,
  TerraformOutput,
  TerraformStack,
  TerraformVariable,
  UserAssignedIdentity,
} from './cdk.ts';
import type { Construct } from './cdk.ts';
import type { BatchPoolSettings, InfraSettings } from './settings.ts';

/** The audience of every federated credential that Kubernetes service account tokens are exchanged with. */
const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
/** The Key Vault secret the api's SecretProviderClass mounts (k8s/overlays/azure/api-keys.yaml). */
export const API_KEYS_SECRET = 'api-keys';

/**
 * The orchestrator on Azure: AKS (workload identity, KEDA add-on, Secrets Store CSI driver, Container
 * Insights), a registry, Service Bus with every queue of `@orch/core`, Blob Storage, PostgreSQL
 * Flexible Server with Entra ID authentication only, a Batch account with the `ml` and `batch`
 * pools, a Key Vault with the API keys, and one user-assigned identity per service federated with
 * its Kubernetes service account. Outputs: what scripts/deploy_batch.sh reads.
 */
export class OrchestratorStack extends TerraformStack {
  constructor(scope: Construct, settings: InfraSettings) {
    super(scope, settings.stackName);
    const { prefix, environment, location } = settings;
    const base = `${prefix}-${environment}`;
    const tags = { application: 'cloud-job-orchestrator', environment, 'managed-by': 'cdktf' };

    if (settings.state.kind === 'azurerm') {
      new AzurermBackend(this, {
        storageAccountName: settings.state.storageAccount,
        resourceGroupName: settings.state.resourceGroup,
        containerName: settings.state.container,
        key: settings.state.key,
        useAzureadAuth: true,
      });
    } else {
      // Relative to the stack's directory (cdktf.out/stacks/<stack>), where both `cdktf deploy` and
      // `terraform -chdir=…` run: the repository root, so re-synthesizing never touches it.
      new LocalBackend(this, { path: `../../../terraform.${settings.stackName}.tfstate` });
    }

    new AzurermProvider(this, 'azurerm', {
      features: [{}],
      // The storage account refuses shared keys: Terraform uses Entra ID for blob data as well.
      storageUseAzuread: true,
    });
    const client = new DataAzurermClientConfig(this, 'current', {});

    // Globally unique names end with this: stable per subscription, prefix and environment.
    const suffix =
      settings.nameSuffix ??
      new TerraformLocal(this, 'name_suffix', Fn.substr(Fn.sha1(Fn.join('/', [client.subscriptionId, base])), 0, 6))
        .asString;
    const compact = `${prefix}${environment}${suffix}`;
    const dashed = `${base}-${suffix}`;

    const rg = new ResourceGroup(this, 'resource_group', { name: `${base}-rg`, location, tags });
    const inRg = { resourceGroupName: rg.name, location, tags };

    const logs = new LogAnalyticsWorkspace(this, 'logs', {
      ...inRg,
      name: `${base}-logs`,
      sku: 'PerGB2018',
      retentionInDays: settings.logRetentionDays,
    });

    const acr = new ContainerRegistry(this, 'registry', {
      ...inRg,
      name: compact,
      sku: settings.acrSku,
      adminEnabled: false,
      anonymousPullEnabled: false,
    });

    // --- Identities: one per service, KEDA's, and the Batch pools' ------------------------------
    const identities = new Map<ServiceName, UserAssignedIdentity>();
    for (const service of SERVICES) {
      identities.set(
        service,
        new UserAssignedIdentity(this, `identity_${service.replaceAll('-', '_')}`, {
          ...inRg,
          name: `${base}-${service}`,
        }),
      );
    }
    const identityOf = (service: ServiceName): UserAssignedIdentity => {
      const identity = identities.get(service);
      if (!identity) throw new Error(`no identity for ${service}`);
      return identity;
    };
    const kedaIdentity = new UserAssignedIdentity(this, 'identity_keda', { ...inRg, name: `${base}-keda` });
    const batchTaskIdentity = new UserAssignedIdentity(this, 'identity_batch_task', {
      ...inRg,
      name: `${base}-batch-task`,
    });

    // --- AKS --------------------------------------------------------------------------------------
    const aks = new KubernetesCluster(this, 'aks', {
      ...inRg,
      name: `${base}-aks`,
      dnsPrefix: base,
      ...(settings.aks.kubernetesVersion && { kubernetesVersion: settings.aks.kubernetesVersion }),
      skuTier: settings.aks.skuTier,
      automaticUpgradeChannel: 'patch',
      nodeOsUpgradeChannel: 'NodeImage',
      defaultNodePool: {
        name: 'system',
        vmSize: settings.aks.nodeSize,
        autoScalingEnabled: true,
        minCount: settings.aks.minNodes,
        maxCount: settings.aks.maxNodes,
        temporaryNameForRotation: 'systemtmp',
        upgradeSettings: { maxSurge: '10%' },
      },
      identity: { type: 'SystemAssigned' },
      oidcIssuerEnabled: true,
      workloadIdentityEnabled: true,
      workloadAutoscalerProfile: { kedaEnabled: true },
      // The api's key list: the Key Vault secret, mounted by the Secrets Store CSI driver.
      keyVaultSecretsProvider: { secretRotationEnabled: true },
      omsAgent: { logAnalyticsWorkspaceId: logs.id, msiAuthForMonitoringEnabled: true },
      // k8s/base has NetworkPolicies: Cilium enforces them.
      networkProfile: {
        networkPlugin: 'azure',
        networkPluginMode: 'overlay',
        networkDataPlane: 'cilium',
        networkPolicy: 'cilium',
        loadBalancerSku: 'standard',
      },
    });

    const federate = (id: string, identity: UserAssignedIdentity, namespace: string, serviceAccount: string) =>
      new FederatedIdentityCredential(this, id, {
        name: `${namespace}-${serviceAccount}`,
        resourceGroupName: rg.name,
        parentId: identity.id,
        audience: [TOKEN_EXCHANGE_AUDIENCE],
        issuer: aks.oidcIssuerUrl,
        subject: serviceAccountSubject(namespace, serviceAccount),
      });
    for (const service of SERVICES)
      federate(`federation_${service.replaceAll('-', '_')}`, identityOf(service), K8S_NAMESPACE, service);
    federate('federation_keda', kedaIdentity, KEDA_SERVICE_ACCOUNT.namespace, KEDA_SERVICE_ACCOUNT.name);

    // --- Service Bus: every queue of @orch/core ---------------------------------------------------
    const serviceBus = new ServicebusNamespace(this, 'servicebus', {
      ...inRg,
      name: dashed,
      sku: settings.serviceBus.sku,
      ...(settings.serviceBus.sku === 'Premium' && { capacity: 1, premiumMessagingPartitions: 1 }),
      // Entra ID only: no shared access keys anywhere.
      localAuthEnabled: false,
      minimumTlsVersion: '1.2',
    });
    const queues = new Map<string, ServicebusQueue>();
    for (const name of PHYSICAL_QUEUES) {
      queues.set(
        name,
        new ServicebusQueue(this, `queue_${name.replaceAll('-', '_')}`, {
          name,
          namespaceId: serviceBus.id,
          lockDuration: isoDuration(settings.serviceBus.lockDurationInMs),
          maxDeliveryCount: settings.serviceBus.maxDeliveryCount,
          deadLetteringOnMessageExpiration: true,
        }),
      );
    }
    const queueId = (name: string): string => {
      const queue = queues.get(name);
      if (!queue) throw new Error(`queue ${name} is not one of @orch/core's PHYSICAL_QUEUES`);
      return queue.id;
    };

    // --- Blob Storage -----------------------------------------------------------------------------
    const storage = new StorageAccount(this, 'storage', {
      ...inRg,
      name: compact,
      accountTier: 'Standard',
      accountKind: 'StorageV2',
      accountReplicationType: settings.storage.replication,
      minTlsVersion: 'TLS1_2',
      httpsTrafficOnlyEnabled: true,
      allowNestedItemsToBePublic: false,
      sharedAccessKeyEnabled: false,
      defaultToOauthAuthentication: true,
      blobProperties: {
        deleteRetentionPolicy: { days: 7 },
        containerDeleteRetentionPolicy: { days: 7 },
      },
    });
    const container = new StorageContainer(this, 'results_container', {
      name: settings.storage.container,
      storageAccountId: storage.id,
      containerAccessType: 'private',
    });

    // --- PostgreSQL: Entra ID authentication only -------------------------------------------------
    const postgres = new PostgresqlFlexibleServer(this, 'postgres', {
      ...inRg,
      name: dashed,
      version: settings.postgres.version,
      skuName: settings.postgres.sku,
      storageMb: settings.postgres.storageMb,
      backupRetentionDays: 7,
      publicNetworkAccessEnabled: true,
      authentication: {
        activeDirectoryAuthEnabled: true,
        passwordAuthEnabled: false,
        tenantId: client.tenantId,
      },
      // Azure picks the zone; a later plan must not try to move the server.
      lifecycle: { ignoreChanges: ['zone'] },
    });
    const adminLogin =
      settings.postgres.adminLogin ??
      new TerraformVariable(this, 'postgres_admin_name', {
        type: 'string',
        description:
          'Entra administrator of PostgreSQL as psql logs in (a user principal name, or a group name); ' +
          'or set ORCH_PG_ADMIN_LOGIN when synthesizing',
      }).stringValue;
    new PostgresqlFlexibleServerActiveDirectoryAdministrator(this, 'postgres_entra_admin', {
      resourceGroupName: rg.name,
      serverName: postgres.name,
      tenantId: client.tenantId,
      objectId: settings.postgres.adminObjectId ?? client.objectId,
      principalName: adminLogin,
      principalType: settings.postgres.adminType,
    });
    const database = new PostgresqlFlexibleServerDatabase(this, 'database', {
      name: settings.postgres.database,
      serverId: postgres.id,
      charset: 'UTF8',
      collation: 'en_US.utf8',
    });
    // AKS egress has no fixed address without a NAT gateway: admit Azure's, then tokens decide.
    new PostgresqlFlexibleServerFirewallRule(this, 'postgres_allow_azure', {
      name: 'allow-azure-services',
      serverId: postgres.id,
      startIpAddress: '0.0.0.0',
      endIpAddress: '0.0.0.0',
    });
    settings.postgres.allowedIpRanges.forEach((range, i) => {
      const [start = range, end = start] = range.split('-');
      new PostgresqlFlexibleServerFirewallRule(this, `postgres_allow_admin_${i}`, {
        name: `allow-admin-${i}`,
        serverId: postgres.id,
        startIpAddress: start,
        endIpAddress: end,
      });
    });

    // --- Azure Batch ------------------------------------------------------------------------------
    const batch = new BatchAccount(this, 'batch', {
      ...inRg,
      name: compact,
      poolAllocationMode: 'BatchService',
      // Entra ID only: no shared keys.
      allowedAuthenticationModes: ['AAD'],
      publicNetworkAccessEnabled: true,
    });
    const pools = settings.batch.pools.map(
      (pool) =>
        new BatchPool(this, `pool_${pool.queue.replace('-jobs', '')}`, {
          name: pool.name,
          displayName: `${pool.queue} (${base})`,
          resourceGroupName: rg.name,
          accountName: batch.name,
          vmSize: pool.vmSize,
          // Ubuntu with a container runtime, as Batch recommends for container workloads.
          nodeAgentSkuId: 'batch.node.ubuntu 22.04',
          storageImageReference: { publisher: 'microsoft-dsvm', offer: 'ubuntu-hpc', sku: '2204', version: 'latest' },
          maxTasksPerNode: settings.batch.taskSlotsPerNode,
          targetNodeCommunicationMode: 'Simplified',
          stopPendingResizeOperation: true,
          autoScale: { evaluationInterval: 'PT5M', formula: autoscaleFormula(pool, settings.batch.taskSlotsPerNode) },
          // Tasks run in the worker image; nodes pull it from the registry as the pools' identity.
          containerConfiguration: {
            type: 'DockerCompatible',
            containerRegistries: [{ registryServer: acr.loginServer, userAssignedIdentityId: batchTaskIdentity.id }],
            ...(settings.batch.prefetchImages.length > 0 && {
              containerImageNames: [...settings.batch.prefetchImages],
            }),
          },
          identity: { type: 'UserAssigned', identityIds: [batchTaskIdentity.id] },
        }),
    );

    // --- Key Vault: the API keys, readable by the api identity only ------------------------------
    const vault = new KeyVault(this, 'key_vault', {
      ...inRg,
      name: dashed,
      tenantId: client.tenantId,
      skuName: 'standard',
      rbacAuthorizationEnabled: true,
      purgeProtectionEnabled: true,
      softDeleteRetentionDays: 7,
    });
    // Whoever runs Terraform writes the secret (a data-plane operation under RBAC).
    const deployerWritesSecrets = new RoleAssignment(this, 'role_deployer_key_vault_secrets_officer', {
      scope: vault.id,
      roleDefinitionName: 'Key Vault Secrets Officer',
      principalId: client.objectId,
      description: 'The deployer writes the API keys secret.',
    });
    const apiKeys = new KeyVaultSecret(this, 'api_keys_secret', {
      name: API_KEYS_SECRET,
      keyVaultId: vault.id,
      contentType: 'text/plain',
      value:
        settings.apiKeys ??
        '# <tenant>:<sha256 of the key>[:admin] per line (npx orch keygen). Set it with: ' +
          `az keyvault secret set --vault-name <key_vault_name> --name ${API_KEYS_SECRET} --file <list>`,
      // Without ORCH_API_KEYS the list is kept out of Terraform: it never overwrites what operators set.
      ...(settings.apiKeys === undefined && { lifecycle: { ignoreChanges: ['value'] } }),
      dependsOn: [deployerWritesSecrets],
    });

    // --- Role assignments (see access.ts) ---------------------------------------------------------
    const grant = (id: string, principalId: string, roleDefinitionName: string, scope: string, description: string) =>
      new RoleAssignment(this, id, {
        scope,
        roleDefinitionName,
        principalId,
        principalType: 'ServicePrincipal',
        // New identities may not have replicated to Entra ID yet; skip the lookup.
        skipServicePrincipalAadCheck: true,
        description,
      });
    const roleId = (role: string): string =>
      role
        .replace(/^Azure Service Bus Data /, 'servicebus_')
        .replace(/^Storage Blob Data /, 'blob_')
        .replace(/^Azure Batch /, 'batch_')
        .replace(/^Key Vault Secrets /, 'secrets_')
        .toLowerCase()
        .replaceAll(' ', '_');

    for (const service of SERVICES) {
      const access = ACCESS[service];
      const principal = identityOf(service).principalId;
      const key = service.replaceAll('-', '_');
      for (const queueGrant of access.queues) {
        for (const queue of queueGrant.queues) {
          grant(
            `role_${key}_${roleId(queueGrant.role)}_${queue.replaceAll('-', '_')}`,
            principal,
            queueGrant.role,
            queueId(queue),
            `${service}: ${queueGrant.why}`,
          );
        }
      }
      if (access.blob) {
        grant(
          `role_${key}_${roleId(access.blob)}`,
          principal,
          access.blob,
          container.id,
          `${service}: results container`,
        );
      }
      if (access.batch) {
        grant(`role_${key}_${roleId(access.batch)}`, principal, access.batch, batch.id, `${service}: jobs and tasks`);
      }
      if (access.apiKeysSecret) {
        grant(
          `role_${key}_${roleId(access.apiKeysSecret)}`,
          principal,
          access.apiKeysSecret,
          apiKeys.resourceVersionlessId,
          `${service}: reads the API keys (Secrets Store CSI driver)`,
        );
      }
    }
    for (const queue of KEDA_QUEUES) {
      grant(
        `role_keda_servicebus_data_owner_${queue.replaceAll('-', '_')}`,
        kedaIdentity.principalId,
        'Azure Service Bus Data Owner',
        queueId(queue),
        'KEDA: reads the queue depth of a ScaledObject trigger (runtime properties need Manage)',
      );
    }
    grant(
      'role_batch_task_blob_data_contributor',
      batchTaskIdentity.principalId,
      'Storage Blob Data Contributor',
      container.id,
      'Batch tasks: read task specs, write results and manifests',
    );
    grant(
      'role_batch_task_acr_pull',
      batchTaskIdentity.principalId,
      'AcrPull',
      acr.id,
      'Batch nodes: pull the worker image',
    );
    grant(
      'role_aks_kubelet_acr_pull',
      aks.kubeletIdentity.objectId,
      'AcrPull',
      acr.id,
      'AKS nodes: pull the service images',
    );

    // --- Outputs: what scripts/deploy_batch.sh reads ---------------------------------------------
    const output = (name: string, value: unknown, description: string) =>
      new TerraformOutput(this, name, { value, description });
    output('resource_group_name', rg.name, 'Resource group of everything');
    output('aks_cluster_name', aks.name, 'AKS cluster');
    output('aks_oidc_issuer_url', aks.oidcIssuerUrl, 'Issuer of the federated credentials');
    output('acr_name', acr.name, 'Container registry (az acr build --registry)');
    output('acr_login_server', acr.loginServer, 'Registry host of the images');
    output(
      'servicebus_namespace',
      `${serviceBus.name}.servicebus.windows.net`,
      'SERVICEBUS_NAMESPACE (fully qualified)',
    );
    output('storage_blob_endpoint', storage.primaryBlobEndpoint, 'AZURE_STORAGE_ACCOUNT_URL');
    output('blob_container', container.name, 'BLOB_CONTAINER');
    output('postgres_fqdn', postgres.fqdn, 'PostgreSQL host');
    output('postgres_database', database.name, 'PostgreSQL database');
    output('postgres_admin_login', adminLogin, 'Entra administrator of PostgreSQL (psql user)');
    output('batch_account_endpoint', batch.accountEndpoint, 'AZURE_BATCH_ACCOUNT_URL (without https://)');
    const poolOutput = (queue: BatchPoolSettings['queue']): string => {
      const index = settings.batch.pools.findIndex((p) => p.queue === queue);
      const pool = pools[index];
      if (!pool) throw new Error(`no Batch pool for ${queue}`);
      return pool.name;
    };
    output('batch_pool_ml', poolOutput('ml-jobs'), 'AZURE_BATCH_POOL_ML');
    output('batch_pool_batch', poolOutput('batch-jobs'), 'AZURE_BATCH_POOL_BATCH');
    output('batch_task_identity_client_id', batchTaskIdentity.clientId, 'AZURE_BATCH_TASK_CLIENT_ID');
    output('keda_identity_client_id', kedaIdentity.clientId, 'TriggerAuthentication identityId');
    output(
      'workload_identities',
      Object.fromEntries(
        SERVICES.map((service) => [
          service,
          { client_id: identityOf(service).clientId, principal_id: identityOf(service).principalId },
        ]),
      ),
      'Per service: client id (service account annotation) and principal id (PostgreSQL role)',
    );
    output('key_vault_name', vault.name, 'Key Vault of the API keys (SecretProviderClass keyvaultName)');
    output('key_vault_uri', vault.vaultUri, 'Key Vault URI');
    output('tenant_id', client.tenantId, 'Entra tenant (SecretProviderClass tenantId)');
  }
}

/**
 * An ISO-8601 duration in the canonical form Azure reports back (.NET's `XmlConvert`: `PT1M`, not
 * `PT60S`; `PT1M30S`, `PT5S`, `P1DT2H`), so a later plan sees no difference. Millisecond precision.
 */
export function isoDuration(ms: number): string {
  const total = Math.round(ms);
  const days = Math.floor(total / 86_400_000);
  const hours = Math.floor((total % 86_400_000) / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = (total % 60_000) / 1000;
  const part = (count: number, unit: string): string => (count ? `${count}${unit}` : '');
  const time = part(hours, 'H') + part(minutes, 'M') + part(seconds, 'S');
  return `P${part(days, 'D')}${time || !days ? `T${time || '0S'}` : ''}`;
}

/**
 * Nodes follow the pending tasks (the Batch docs' formula): as many nodes as the tasks need, up
 * to the pool's maximum; with nothing pending the pool halves at each evaluation down to zero, and
 * a node leaves only when its tasks are done.
 */
export function autoscaleFormula(pool: Pick<BatchPoolSettings, 'maxNodes'>, slotsPerNode: number): string {
  return [
    '$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);',
    '$tasks = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : max($PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));',
    `$nodes = ceil($tasks / ${slotsPerNode});`,
    '$targetVMs = $tasks > 0 ? $nodes : max(0, $TargetDedicatedNodes / 2);',
    `$TargetDedicatedNodes = max(0, min($targetVMs, ${pool.maxNodes}));`,
    '$TargetLowPriorityNodes = 0;',
    '$NodeDeallocationOption = taskcompletion;',
  ].join('\n');
}
