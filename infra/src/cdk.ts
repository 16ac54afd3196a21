/**
 * Every import of CDK for Terraform and its Azure provider, in one place. HashiCorp archived CDKTF
 * in December 2025; CDK Terrain (`cdktn`) is an API-identical fork, so switching is a change of
 * this file only. Resources are imported by deep path: the provider's barrel takes seconds to load.
 */
export {
  App,
  AzurermBackend,
  Fn,
  LocalBackend,
  TerraformLocal,
  TerraformOutput,
  TerraformStack,
  TerraformVariable,
} from 'cdktf';
export { Construct } from 'constructs';

export { AzurermProvider } from '@cdktf/provider-azurerm/lib/provider/index.js';
export { DataAzurermClientConfig } from '@cdktf/provider-azurerm/lib/data-azurerm-client-config/index.js';
export { ResourceGroup } from '@cdktf/provider-azurerm/lib/resource-group/index.js';
export { LogAnalyticsWorkspace } from '@cdktf/provider-azurerm/lib/log-analytics-workspace/index.js';
export { ContainerRegistry } from '@cdktf/provider-azurerm/lib/container-registry/index.js';
export { KubernetesCluster } from '@cdktf/provider-azurerm/lib/kubernetes-cluster/index.js';
export { ServicebusNamespace } from '@cdktf/provider-azurerm/lib/servicebus-namespace/index.js';
export { ServicebusQueue } from '@cdktf/provider-azurerm/lib/servicebus-queue/index.js';
export { StorageAccount } from '@cdktf/provider-azurerm/lib/storage-account/index.js';
export { StorageContainer } from '@cdktf/provider-azurerm/lib/storage-container/index.js';
export { PostgresqlFlexibleServer } from '@cdktf/provider-azurerm/lib/postgresql-flexible-server/index.js';
export { PostgresqlFlexibleServerActiveDirectoryAdministrator } from '@cdktf/provider-azurerm/lib/postgresql-flexible-server-active-directory-administrator/index.js';
export { PostgresqlFlexibleServerDatabase } from '@cdktf/provider-azurerm/lib/postgresql-flexible-server-database/index.js';
export { PostgresqlFlexibleServerFirewallRule } from '@cdktf/provider-azurerm/lib/postgresql-flexible-server-firewall-rule/index.js';
export { BatchAccount } from '@cdktf/provider-azurerm/lib/batch-account/index.js';
export { BatchPool } from '@cdktf/provider-azurerm/lib/batch-pool/index.js';
export { KeyVault } from '@cdktf/provider-azurerm/lib/key-vault/index.js';
export { KeyVaultSecret } from '@cdktf/provider-azurerm/lib/key-vault-secret/index.js';
export { UserAssignedIdentity } from '@cdktf/provider-azurerm/lib/user-assigned-identity/index.js';
export { FederatedIdentityCredential } from '@cdktf/provider-azurerm/lib/federated-identity-credential/index.js';
export { RoleAssignment } from '@cdktf/provider-azurerm/lib/role-assignment/index.js';
