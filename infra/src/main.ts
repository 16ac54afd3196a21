/**
 * The CDK for Terraform app: `npm run infra:synth` writes cdktf.out/stacks/<ORCH_STACK>/cdk.tf.json
 * at the repository root (gitignored), which `terraform -chdir=… init/apply` or `cdktf deploy`
 * applies. Settings come from the environment (see settings.ts and the README's Deployment section).
 */
import { fileURLToPath } from 'node:url';
import { isOrchestratorError } from '@orch/core';
import { App } from './cdk.ts';
import { OrchestratorStack } from './orchestrator-stack.ts';
import { loadInfraSettings } from './settings.ts';

const DEFAULT_OUTDIR = fileURLToPath(new URL('../../cdktf.out', import.meta.url));

try {
  const settings = loadInfraSettings(process.env);
  // CDKTF_OUTDIR is what the cdktf CLI sets when it runs the app.
  const outdir = process.env.ORCH_CDKTF_OUTDIR || process.env.CDKTF_OUTDIR || DEFAULT_OUTDIR;
  const app = new App({ outdir });
  new OrchestratorStack(app, settings);
  app.synth();
  console.log(`synthesized stack ${settings.stackName} to ${outdir}/stacks/${settings.stackName}/cdk.tf.json`);
} catch (e) {
  if (!isOrchestratorError(e)) throw e;
  console.error(`infra: ${e.message}`);
  process.exitCode = 1;
}
