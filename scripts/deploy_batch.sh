#!/usr/bin/env bash
# Deploys the orchestrator to Azure end to end: the infrastructure (CDK for Terraform), the images
# (built by Azure Container Registry, no local Docker needed), the PostgreSQL roles of the services'
# identities, and the Kubernetes manifests (k8s/overlays/azure) on AKS. Run with --help.
set -euo pipefail

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
  echo 'deploy_batch: needs bash 4.4 or later' >&2
  exit 1
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly NAMESPACE=orchestrator
# image name (orchestrator/<name>, as in k8s/base) | Dockerfile | build argument
readonly IMAGES=(
  'api|dockerfiles/Dockerfile.api|'
  'scheduler|dockerfiles/Dockerfile.scheduler|'
  'actor-worker|dockerfiles/Dockerfile.worker|WORKER_POOL=actor'
  'spark-worker|dockerfiles/Dockerfile.worker|WORKER_POOL=spark'
  'batch-submitter|dockerfiles/Dockerfile.batch-submitter|'
)
# The services: Deployment, service account, PostgreSQL role and key of the workload_identities output.
readonly SERVICES=(api scheduler actor-worker spark-worker batch-submitter)
# Batch tasks run the task runner of the worker image.
readonly BATCH_TASK_IMAGE=actor-worker
readonly GENERATED=dist/deploy/azure

usage() {
  cat <<'EOF'
Usage: scripts/deploy_batch.sh [options]

Deploys the orchestrator to Azure, end to end:
  1. synthesizes the infrastructure (npm run infra:synth) with the PostgreSQL administrator (see
     Environment) and applies it with Terraform (terraform -chdir=cdktf.out/stacks/<stack> init /
     apply);
  2. reads the stack's outputs (terraform output -json);
  3. builds and pushes the images with Azure Container Registry (az acr build);
  4. creates the PostgreSQL role of each service's identity (Entra ID) and their grants;
  5. on a first deployment (the Key Vault secret api-keys holds no key yet), makes an admin API
     key (orch keygen), stores its entry there, and prints the key once at the end;
  6. generates dist/deploy/azure/kustomization.yaml over k8s/overlays/azure (images, client ids,
     endpoints) and applies it to AKS, then waits for the rollouts;
  7. prints the API's address.

Options:
  --stack NAME      CDK for Terraform stack (default: $ORCH_STACK or "orchestrator")
  --tag TAG         image tag (default: the git commit, with a timestamp if the tree is dirty)
  --skip-infra      do not synthesize or apply the infrastructure (reuse what exists)
  --outputs FILE    read the stack's outputs from FILE (saved `terraform output -json`) instead
  --yes             apply the Terraform plan without asking
  --dry-run         print every command instead of running it
  -h, --help        show this help

Environment:
  ORCH_PG_ADMIN_LOGIN  the Entra administrator of PostgreSQL, as psql logs in (Terraform variable
                       postgres_admin_name; TF_VAR_postgres_admin_name is read too). Default: the
                       signed-in Azure user (az ad signed-in-user show --query userPrincipalName),
                       who also becomes that administrator's object id unless
                       ORCH_PG_ADMIN_OBJECT_ID says otherwise. Deploying as a service principal or
                       for a group: set it, with ORCH_PG_ADMIN_TYPE (and ORCH_PG_ADMIN_OBJECT_ID).
  ORCH_*               the other infrastructure settings (infra/src/settings.ts, README).

Requires: bash 4.4+, az (logged in), terraform, kubectl, psql, npm, and npm ci done (the
project's Node 24, node_modules/.bin/node, runs first on PATH). The Azure identity running this
must be the Entra administrator of the PostgreSQL server (postgres_admin_login).

Terraform outputs read: resource_group_name, aks_cluster_name, acr_name, acr_login_server,
servicebus_namespace (fully qualified), storage_blob_endpoint, blob_container, postgres_fqdn,
postgres_database, postgres_admin_login, batch_account_endpoint, batch_pool_ml, batch_pool_batch,
batch_task_identity_client_id, keda_identity_client_id, and workload_identities: one entry per
service (api, scheduler, actor-worker, spark-worker, batch-submitter) with client_id and
principal_id.
EOF
}

STACK=${ORCH_STACK:-orchestrator}
TAG=''
SKIP_INFRA=false
OUTPUTS_FILE=''
AUTO_APPROVE=false
DRY_RUN=false

die() {
  printf 'deploy_batch: %s\n' "$*" >&2
  exit 1
}
# shellcheck source-path=SCRIPTDIR source=lib/deploy-common.sh
source "$ROOT/scripts/lib/deploy-common.sh"

while [[ $# -gt 0 ]]; do
  case $1 in
    --stack) STACK=${2:?--stack needs a value} && shift ;;
    --tag) TAG=${2:?--tag needs a value} && shift ;;
    --outputs) OUTPUTS_FILE=${2:?--outputs needs a file} && shift ;;
    --skip-infra) SKIP_INFRA=true ;;
    --yes) AUTO_APPROVE=true ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done




# Pipes SQL into psql as the Entra administrator, or prints it with --dry-run.
run_sql() {
  local database=$1 sql=$2
  local target="host=$PG_FQDN port=5432 dbname=$database user=$PG_ADMIN sslmode=require"
  if $DRY_RUN; then
    printf "+ psql -v ON_ERROR_STOP=1 -q %s <<'SQL'\n%s\nSQL\n" "$(quote "$target")" "$sql"
  else
    PGPASSWORD=$PG_TOKEN psql -v ON_ERROR_STOP=1 -q "$target" <<<"$sql"
  fi
}


# Single quotes for a YAML scalar.
yaml_quote() { printf "'%s'" "${1//\'/\'\'}"; }

if [[ -n $OUTPUTS_FILE ]]; then
  [[ -f $OUTPUTS_FILE ]] || die "no such file: $OUTPUTS_FILE"
  OUTPUTS_FILE=$(cd "$(dirname "$OUTPUTS_FILE")" && pwd)/$(basename "$OUTPUTS_FILE")
fi
cd "$ROOT"
[[ -n $TAG ]] || TAG=$(default_tag)
[[ $TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not a valid image tag: $TAG"
TF_DIR=cdktf.out/stacks/$STACK

if ! $DRY_RUN; then
  for tool in az terraform kubectl psql npm; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (see --help)"
  done
  [[ -x $ROOT/node_modules/.bin/node ]] || die 'no node_modules/.bin/node (Node 24): run npm ci first'
  az account show >/dev/null 2>&1 || die 'not logged in to Azure: run az login'
fi

if ! $SKIP_INFRA; then
  log "infrastructure: stack $STACK"
  # Unnamed, the administrator would be a Terraform variable that `apply -input=false` cannot ask for.
  PG_ADMIN_LOGIN=${ORCH_PG_ADMIN_LOGIN:-${TF_VAR_postgres_admin_name:-}}
  if [[ -z $PG_ADMIN_LOGIN ]]; then
    if ! capture PG_ADMIN_LOGIN '<signed-in-user>' \
      az ad signed-in-user show --query userPrincipalName --output tsv || [[ -z $PG_ADMIN_LOGIN ]]; then
      die 'no signed-in user to make the PostgreSQL administrator (a service principal?): set ORCH_PG_ADMIN_LOGIN (see --help)'
    fi
  fi
  run env "ORCH_PG_ADMIN_LOGIN=$PG_ADMIN_LOGIN" npm run infra:synth
  run terraform "-chdir=$TF_DIR" init -input=false
  if $AUTO_APPROVE; then
    run terraform "-chdir=$TF_DIR" apply -input=false -auto-approve
  else
    run terraform "-chdir=$TF_DIR" apply -input=false
  fi
fi

log 'reading the stack outputs'
if [[ -n $OUTPUTS_FILE ]]; then
  OUTPUTS=$(cat "$OUTPUTS_FILE")
else
  capture OUTPUTS '' terraform "-chdir=$TF_DIR" output -json
fi

# output NAME [KEY...]: the value of a Terraform output (or of a key inside it). In a dry run
# without --outputs, a placeholder.
output() {
  if [[ -z $OUTPUTS ]]; then
    local IFS=.
    printf '<%s>' "$*"
    return
  fi
  # shellcheck disable=SC2016 # JavaScript, not shell: its ${} are template literals.
  node -e '
    const [name, ...keys] = process.argv.slice(1);
    let value = JSON.parse(require("node:fs").readFileSync(0, "utf8"))[name]?.value;
    for (const key of keys) value = value?.[key];
    if (value === undefined || value === null || value === "") {
      console.error(`deploy_batch: the stack has no output ${[name, ...keys].join(".")}`);
      process.exit(1);
    }
    process.stdout.write(String(value));
  ' "$@" <<<"$OUTPUTS"
}

RESOURCE_GROUP=$(output resource_group_name)
AKS=$(output aks_cluster_name)
ACR=$(output acr_name)
REGISTRY=$(output acr_login_server)
SERVICEBUS=$(output servicebus_namespace)
BLOB_ENDPOINT=$(output storage_blob_endpoint)
BLOB_CONTAINER=$(output blob_container)
PG_FQDN=$(output postgres_fqdn)
PG_DATABASE=$(output postgres_database)
PG_ADMIN=$(output postgres_admin_login)
BATCH_ENDPOINT=$(output batch_account_endpoint)
BATCH_POOL_ML=$(output batch_pool_ml)
BATCH_POOL_BATCH=$(output batch_pool_batch)
BATCH_TASK_CLIENT_ID=$(output batch_task_identity_client_id)
KEDA_CLIENT_ID=$(output keda_identity_client_id)
KEY_VAULT=$(output key_vault_name)
TENANT_ID=$(output tenant_id)
declare -A CLIENT_ID PRINCIPAL_ID
for service in "${SERVICES[@]}"; do
  CLIENT_ID[$service]=$(output workload_identities "$service" client_id)
  PRINCIPAL_ID[$service]=$(output workload_identities "$service" principal_id)
done
[[ $BATCH_ENDPOINT == https://* || $BATCH_ENDPOINT == '<'* ]] || BATCH_ENDPOINT=https://$BATCH_ENDPOINT

log "images: $REGISTRY/orchestrator/*:$TAG"
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r name dockerfile build_arg <<<"$entry"
  build_args=()
  [[ -z $build_arg ]] || build_args=(--build-arg "$build_arg")
  run az acr build --registry "$ACR" --image "orchestrator/$name:$TAG" --file "$dockerfile" \
    "${build_args[@]}" .
done

log "PostgreSQL roles on $PG_FQDN"
capture PG_TOKEN '<token>' az account get-access-token --resource-type oss-rdbms --query accessToken --output tsv
# Each service logs in as a role of its own, bound to its identity's object id (the Entra functions
# live in the postgres database). The roles share orchestrator_app, which owns the schema's tables
# whichever service migrates first: each role's sessions act as it.
principals=''
grants=''
for service in "${SERVICES[@]}"; do
  principals+="  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$service') THEN
    PERFORM pgaadauth_create_principal_with_oid('$service', '${PRINCIPAL_ID[$service]}', 'service', false, false);
  END IF;
"
  grants+="GRANT orchestrator_app TO \"$service\";
ALTER ROLE \"$service\" SET role = 'orchestrator_app';
"
done
run_sql postgres "DO \$\$
BEGIN
${principals}END
\$\$;"
run_sql "$PG_DATABASE" "DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orchestrator_app') THEN
    CREATE ROLE orchestrator_app NOLOGIN;
  END IF;
END
\$\$;
GRANT CONNECT, TEMPORARY ON DATABASE \"$PG_DATABASE\" TO orchestrator_app;
GRANT USAGE, CREATE ON SCHEMA public TO orchestrator_app;
${grants%$'\n'}"

log "manifests: $GENERATED/kustomization.yaml"
database_url() { printf 'postgres://%s@%s:5432/%s?sslmode=require' "$1" "$PG_FQDN" "$PG_DATABASE"; }
images=''
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r name _ _ <<<"$entry"
  images+="  - name: orchestrator/$name
    newName: $(yaml_quote "$REGISTRY/orchestrator/$name")
    newTag: $(yaml_quote "$TAG")
"
done
service_configs=''
for service in "${SERVICES[@]}"; do
  service_configs+="  - name: $service-config
    behavior: merge
    literals:
      - $(yaml_quote "DATABASE_URL=$(database_url "$service")")
"
  if [[ $service == batch-submitter ]]; then
    for literal in "AZURE_BATCH_ACCOUNT_URL=$BATCH_ENDPOINT" "AZURE_BATCH_POOL_ML=$BATCH_POOL_ML" \
      "AZURE_BATCH_POOL_BATCH=$BATCH_POOL_BATCH" \
      "AZURE_BATCH_TASK_IMAGE=$REGISTRY/orchestrator/$BATCH_TASK_IMAGE:$TAG" \
      "AZURE_BATCH_TASK_CLIENT_ID=$BATCH_TASK_CLIENT_ID"; do
      service_configs+="      - $(yaml_quote "$literal")
"
    done
  fi
done
identities=''
for service in "${SERVICES[@]}"; do
  identities+="      - $(yaml_quote "$service=${CLIENT_ID[$service]}")
"
done
write_file "$GENERATED/kustomization.yaml" "# Generated by scripts/deploy_batch.sh (stack $STACK, tag $TAG): the values of this deployment
# over k8s/overlays/azure. Do not edit; run the script again.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../k8s/overlays/azure
components:
  # Again, so the identities and namespace below reach the service accounts and KEDA triggers.
  - ../../../k8s/components/azure-workload-identity
images:
${images}configMapGenerator:
  - name: orchestrator-config
    behavior: merge
    literals:
      - $(yaml_quote "SERVICEBUS_NAMESPACE=$SERVICEBUS")
      - $(yaml_quote "AZURE_STORAGE_ACCOUNT_URL=${BLOB_ENDPOINT%/}")
      - $(yaml_quote "BLOB_CONTAINER=$BLOB_CONTAINER")
${service_configs}  - name: workload-identities
    behavior: replace
    options:
      disableNameSuffixHash: true
      annotations:
        config.kubernetes.io/local-config: 'true'
    literals:
${identities}      - $(yaml_quote "keda=$KEDA_CLIENT_ID")
  - name: key-vault
    behavior: replace
    options:
      disableNameSuffixHash: true
      annotations:
        config.kubernetes.io/local-config: 'true'
    literals:
      - $(yaml_quote "name=$KEY_VAULT")
      - $(yaml_quote "tenantId=$TENANT_ID")"

log "AKS: $AKS"
run az aks get-credentials --resource-group "$RESOURCE_GROUP" --name "$AKS" --overwrite-existing
# The KEDA add-on's operator picks up its federated identity (for the Service Bus triggers) on restart.
run kubectl --context "$AKS" --namespace kube-system rollout restart deployment/keda-operator
# The API refuses to start in azure mode without keys: on a first deployment, when the Key Vault
# secret holds no entry yet (the infra creates it with a comment only), make one admin key, store its
# hash there, and print the key once. A dry run cannot know, so it prints both steps.
FIRST_KEY=''
current=''
capture current '' az keyvault secret show --vault-name "$KEY_VAULT" --name api-keys --query value --output tsv
if ! grep -qE '^[[:space:]]*[A-Za-z0-9][A-Za-z0-9._-]*:[0-9a-fA-F]{64}' <<<"$current"; then
  if $DRY_RUN; then
    log 'if the api-keys secret holds no key yet (a first deployment): a first admin key'
  else
    log 'the api-keys secret holds no key yet: making a first admin key'
  fi
  made=''
  capture made '{"key":"<key>","entry":"<entry>"}' node services/cli/src/main.ts keygen --tenant admin --admin --json
  FIRST_KEY=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).key)' "$made")
  entry=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).entry)' "$made")
  run az keyvault secret set --vault-name "$KEY_VAULT" --name api-keys --value "$entry" --output none
fi
run kubectl --context "$AKS" apply -k "$GENERATED"
for service in "${SERVICES[@]}"; do
  run kubectl --context "$AKS" --namespace "$NAMESPACE" rollout status "deployment/$service" --timeout=10m
done

log 'waiting for the API address'
address_of_api=(kubectl --context "$AKS" --namespace "$NAMESPACE" get service api-service
  --output 'jsonpath={.status.loadBalancer.ingress[0].ip}')
if $DRY_RUN; then
  run "${address_of_api[@]}"
  address='<api-address>'
else
  address=''
  for _ in $(seq 60); do
    address=$("${address_of_api[@]}")
    [[ -z $address ]] || break
    sleep 5
  done
  [[ -n $address ]] || die 'api-service got no external address within 5 minutes'
fi
printf 'API: http://%s:8000 (docs: http://%s:8000/docs)\n' "$address" "$address"
if [[ -n $FIRST_KEY ]]; then
  printf 'First admin API key (shown once; only its hash is stored, in Key Vault %s):\n  %s\n' "$KEY_VAULT" "$FIRST_KEY"
  printf 'More keys: npx orch keygen --tenant <name>, then add the entry to the api-keys secret and restart the api.\n'
fi
