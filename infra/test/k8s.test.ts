import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import type { IContainerPort, IPodSpec } from 'kubernetes-models/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { apiServiceConfigSchema, buildApp, hashApiKey, parseApiKeys } from '@orch/api';
import { batchSubmitterConfigSchema } from '@orch/batch-submitter';
import { AKS_POOL_QUEUES, createHandlerRegistry, lanesOf, POOL_SCALING } from '@orch/core';
import { createFsBlobStore } from '@orch/platform/fs-blob';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { createLogger, startOpsServer } from '@orch/platform/runtime';
import { schedulerConfigSchema } from '@orch/scheduler';
import { workerConfigSchema } from '@orch/workers';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kustomize } from './kubectl.ts';
import { schemaProblemsOf, type ValidateThis } from './strict-schema.ts';

/**
 * The Kubernetes manifests (k8s/), rendered the way they are applied (`kubectl kustomize`, i.e. the
 * kustomize built into kubectl; scripts/ensure-tools.sh provides it, ./kubectl.ts finds it),
 * validated against the Kubernetes and KEDA schemas, and checked against the code: environment
 * variable names and values against each service's config schema, ports and probe paths against
 * the servers, queue names and scaling numbers against @orch/core.
 */

const K8S_DIR = fileURLToPath(new URL('../../k8s/', import.meta.url));
const NAMESPACE = 'orchestrator';
const OVERLAYS = ['azure', 'local'] as const;
type Overlay = (typeof OVERLAYS)[number];

/** What the tests need of a zod object schema (the services export theirs). */
interface ConfigSchema {
  shape: Record<string, unknown>;
  safeParse(env: unknown): { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } };
}

interface ServiceSpec {
  /** Deployment, container, service account and image repository (orchestrator/<name>). */
  name: string;
  schema: ConfigSchema;
  /** The named container port its probes use. */
  probePort: 'http' | 'ops';
  /** The pool it serves, for workers. */
  pool?: (typeof AKS_POOL_QUEUES)[number];
}

const SERVICES: readonly ServiceSpec[] = [
  { name: 'api', schema: apiServiceConfigSchema, probePort: 'http' },
  { name: 'scheduler', schema: schedulerConfigSchema, probePort: 'ops' },
  { name: 'actor-worker', schema: workerConfigSchema, probePort: 'ops', pool: 'actor-jobs' },
  { name: 'spark-worker', schema: workerConfigSchema, probePort: 'ops', pool: 'spark-jobs' },
  { name: 'batch-submitter', schema: batchSubmitterConfigSchema, probePort: 'ops' },
];

/**
 * The Secrets Store CSI driver's SecretProviderClass (secrets-store.csi.x-k8s.io/v1), validated
 * against a hand-written copy of the schema of its CRD (no kubernetes-models package exists for it):
 * the metadata an ObjectMeta; `spec.provider` a string; `spec.parameters` a map of strings, with,
 * for the Azure provider, the parameters it cannot work without; `spec.secretObjects` Secrets to
 * sync, of `secretName`, `type`, `labels`, `annotations` and `data` (`objectName`, `key`). It reads
 * every field of that schema a manifest may set (not `status`), as a compiled schema does, for the
 * unknown-field check of ./strict-schema.ts.
 */
class SecretProviderClass {
  static readonly apiVersion = 'secrets-store.csi.x-k8s.io/v1';
  static readonly kind = 'SecretProviderClass';
  readonly apiVersion: unknown;
  readonly kind: unknown;
  readonly metadata: { name?: string } | undefined;
  readonly spec: { provider?: unknown; parameters?: Record<string, unknown>; secretObjects?: unknown } | undefined;

  constructor(data: { spec?: SecretProviderClass['spec']; metadata?: { name?: string } }) {
    Object.assign(this, data);
  }

  validate(): void {
    if (this.apiVersion !== SecretProviderClass.apiVersion) throw new Error("apiVersion is not the CRD's");
    if (this.kind !== SecretProviderClass.kind) throw new Error("kind is not the CRD's");
    // ObjectMeta's schema, through a kind of nothing but metadata.
    Namespace.prototype.validate.call({ apiVersion: 'v1', kind: 'Namespace', metadata: this.metadata });
    const { provider, parameters, secretObjects } = this.spec ?? {};
    if (typeof provider !== 'string' || provider === '') throw new Error('spec.provider must be a string');
    mustBeStrings(parameters, 'spec.parameters');
    if (provider === 'azure') {
      for (const key of ['clientID', 'keyvaultName', 'tenantId', 'objects']) {
        if (!parameters?.[key]) throw new Error(`spec.parameters.${key} is required by the azure provider`);
      }
    }
    for (const [i, secret] of asArray(secretObjects, 'spec.secretObjects').entries()) {
      const { secretName, type, labels, annotations, data } = secret as Record<string, unknown>;
      mustBeStrings({ secretName, type }, `spec.secretObjects[${i}]`);
      mustBeStrings(labels, `spec.secretObjects[${i}].labels`);
      mustBeStrings(annotations, `spec.secretObjects[${i}].annotations`);
      for (const [j, item] of asArray(data, `spec.secretObjects[${i}].data`).entries()) {
        const { objectName, key } = item as Record<string, unknown>;
        mustBeStrings({ objectName, key }, `spec.secretObjects[${i}].data[${j}]`);
      }
    }
  }
}

/** Throws unless `map` is undefined or an object of (defined) strings. */
function mustBeStrings(map: unknown, path: string): void {
  if (map === undefined) return;
  if (map === null || typeof map !== 'object') throw new Error(`${path} must be an object`);
  for (const [key, value] of Object.entries(map)) {
    if (value !== undefined && typeof value !== 'string') throw new Error(`${path}.${key} must be a string`);
  }
}

/** `value` if an array, [] if undefined; throws otherwise. */
function asArray(value: unknown, path: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${path} must be an array`);
  return value as unknown[];
}

/** Every kind the overlays may render, with the model that validates it. */
const MODELS: Readonly<Record<string, { new (data: never): object; prototype: { validate: ValidateThis } }>> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'secrets-store.csi.x-k8s.io/v1/SecretProviderClass': SecretProviderClass,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

interface RawObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

/** What a failing strict validation of the real manifests means. */
const MANIFEST_BUG =
  'a manifest under k8s/ is invalid, or sets a field its kind does not have, which a cluster silently ignores: fix k8s/, not this test';

/**
 * What is wrong with a rendered object by the schema of its kind, strictly: validation errors, and
 * every field the schema does not know (see ./strict-schema.ts), each prefixed with the object.
 */
function problemsOf(object: RawObject): string[] {
  const name = `${object.kind} ${object.metadata.name}`;
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (Model === undefined) return [`${name}: no schema for ${object.apiVersion}/${object.kind}`];
  return schemaProblemsOf(Model.prototype.validate, object).map((problem) => `${name}: ${problem}`);
}

/** Renders a kustomization directory under k8s/ (`overlays/azure`, `monitoring`). */
function render(dir: string): RawObject[] {
  return parseAllDocuments(kustomize(join(K8S_DIR, dir))).map((document) =>
    withUnwrappedSecretData(document.toJS() as RawObject),
  );
}

/**
 * Kustomize wraps long base64 values of Secret data at 76 characters; the API server's decoder skips
 * the line breaks, the schema's "byte" format does not.
 */
function withUnwrappedSecretData(object: RawObject): RawObject {
  if (object.kind !== 'Secret' || object.data === undefined) return object;
  const data = Object.entries(object.data).map(([k, v]): [string, string] => [k, v.replace(/\s/g, '')]);
  return { ...object, data: Object.fromEntries(data) };
}

/** The rendered objects of a kustomization (an overlay by default), each constructed with its model class. */
class Manifests {
  readonly dir: string;
  readonly raw: RawObject[];
  readonly models: unknown[];

  constructor(overlay: Overlay | 'monitoring') {
    this.dir = overlay === 'monitoring' ? overlay : `overlays/${overlay}`;
    this.raw = render(this.dir);
    this.models = this.raw.map((o) => {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      return Model === undefined ? o : new Model(o as never);
    });
  }

  all<T>(type: abstract new (...args: never[]) => T): T[] {
    return this.models.filter((m): m is T => m instanceof type);
  }

  one<T extends { metadata?: { name?: string } }>(type: abstract new (...args: never[]) => T, name: string): T {
    const found = this.all(type).find((o) => o.metadata?.name === name);
    if (found === undefined) throw new Error(`${this.dir}: no ${type.name} named ${name}`);
    return found;
  }

  /** A data object's keys and values (Secrets decoded). */
  dataOf(kind: 'ConfigMap' | 'Secret', name: string): Record<string, string> {
    if (kind === 'ConfigMap') return { ...this.one(ConfigMap, name).data };
    const secret = this.one(Secret, name);
    const decoded = Object.entries(secret.data ?? {}).map(([k, v]): [string, string] => [
      k,
      Buffer.from(v, 'base64').toString(),
    ]);
    return { ...Object.fromEntries(decoded), ...secret.stringData };
  }

  /** The environment a workload's first container gets: envFrom in order, then env. */
  environmentOf(workload: Deployment | StatefulSet): Record<string, string> {
    const container = podSpecOf(workload).containers[0];
    if (container === undefined) throw new Error(`${workload.metadata?.name} has no container`);
    const env: Record<string, string> = {};
    for (const source of container.envFrom ?? []) {
      if (source.configMapRef) Object.assign(env, this.dataOf('ConfigMap', source.configMapRef.name ?? ''));
      if (source.secretRef) Object.assign(env, this.dataOf('Secret', source.secretRef.name ?? ''));
    }
    for (const variable of container.env ?? []) {
      const ref = variable.valueFrom?.configMapKeyRef ?? variable.valueFrom?.secretKeyRef;
      const fromRef = variable.valueFrom?.configMapKeyRef
        ? this.dataOf('ConfigMap', ref?.name ?? '')[ref?.key ?? '']
        : variable.valueFrom?.secretKeyRef
          ? this.dataOf('Secret', ref?.name ?? '')[ref?.key ?? '']
          : undefined;
      env[variable.name] = variable.value ?? fromRef ?? '';
    }
    return env;
  }
}

function podSpecOf(workload: Deployment | StatefulSet): IPodSpec {
  const spec = workload.spec?.template.spec;
  if (spec === undefined) throw new Error(`${workload.metadata?.name} has no pod spec`);
  return spec;
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const podLabelsOf = (workload: Deployment | StatefulSet) => workload.spec?.template.metadata?.labels;

const numberOf = (value: string | undefined, fallback: number): number => (value ? Number(value) : fallback);

const rendered = Object.fromEntries(OVERLAYS.map((o) => [o, new Manifests(o)])) as Record<Overlay, Manifests>;
/** k8s/monitoring, applied on top of either overlay. */
const monitoring = new Manifests('monitoring');

describe.each(OVERLAYS)('k8s/overlays/%s', (overlay) => {
  const k = rendered[overlay];
  const deploymentOf = (service: ServiceSpec) => k.one(Deployment, service.name);

  it('renders, and every object validates strictly, no unknown fields, against the Kubernetes and KEDA schemas (SecretProviderClass: a hand-written one)', () => {
    expect(k.raw.length).toBeGreaterThan(20);
    expect(k.raw.flatMap(problemsOf), MANIFEST_BUG).toStrictEqual([]);
  });

  it('puts everything in the orchestrator namespace, which enforces the restricted pod security standard', () => {
    const namespace = k.one(Namespace, NAMESPACE);
    expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const elsewhere = k.raw.filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== NAMESPACE);
    expect(elsewhere.map((o) => `${o.kind} ${o.metadata.name}`)).toStrictEqual([]);
  });

  it('runs each service as a Deployment of its image, with its own service account set up for workload identity', () => {
    for (const service of SERVICES) {
      const deployment = deploymentOf(service);
      const pod = podSpecOf(deployment);
      expect(pod.containers.map((c) => c.name)).toStrictEqual([service.name]);
      expect(pod.containers[0]?.image).toMatch(new RegExp(`(^|/)orchestrator/${service.name}(:|@|$)`));
      expect(pod.serviceAccountName).toBe(service.name);
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(podLabelsOf(deployment)?.['azure.workload.identity/use']).toBe('true');
      expect(matches(deployment.spec?.selector.matchLabels, podLabelsOf(deployment))).toBe(true);

      const account = k.one(ServiceAccount, service.name);
      expect(account.metadata?.annotations?.['azure.workload.identity/client-id']).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
    }
  });

  it('hardens every pod: non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp', () => {
    const workloads = [...k.all(Deployment), ...k.all(StatefulSet)];
    expect(workloads.length).toBeGreaterThanOrEqual(SERVICES.length);
    for (const workload of workloads) {
      const pod = podSpecOf(workload);
      const name = workload.metadata?.name;
      expect(pod.securityContext?.runAsNonRoot, name).toBe(true);
      expect(pod.securityContext?.runAsUser, name).toBeGreaterThan(0);
      expect(pod.securityContext?.seccompProfile?.type, name).toBe('RuntimeDefault');
      for (const container of pod.containers) {
        expect(container.securityContext?.allowPrivilegeEscalation, name).toBe(false);
        expect(container.securityContext?.capabilities?.drop, name).toContain('ALL');
        expect(container.securityContext?.capabilities?.add ?? [], name).toStrictEqual([]);
        for (const resource of ['cpu', 'memory']) {
          expect(container.resources?.requests?.[resource], `${name} ${resource} request`).toBeDefined();
          expect(container.resources?.limits?.[resource], `${name} ${resource} limit`).toBeDefined();
        }
      }
    }
  });

  it('gives the services a read-only root filesystem, with an emptyDir for /tmp', () => {
    for (const service of SERVICES) {
      const pod = podSpecOf(deploymentOf(service));
      const container = pod.containers[0];
      expect(container?.securityContext?.readOnlyRootFilesystem, service.name).toBe(true);
      const tmp = container?.volumeMounts?.find((m) => m.mountPath === '/tmp');
      expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, service.name).toBeDefined();
    }
  });

  it("probes each service on its real port, named as the code's PORT / OPS_PORT, and listens on all interfaces", () => {
    for (const service of SERVICES) {
      const deployment = deploymentOf(service);
      const container = podSpecOf(deployment).containers[0];
      const env = k.environmentOf(deployment);
      const port = container?.ports?.find((p) => p.name === service.probePort);
      if (service.probePort === 'http') {
        expect(port?.containerPort).toBe(numberOf(env.PORT, 8000));
        expect(env.HOST).toBe('0.0.0.0');
      } else {
        expect(port?.containerPort).toBe(numberOf(env.OPS_PORT, 9464));
        expect(env.OPS_HOST).toBe('0.0.0.0');
      }
      expect(container?.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: service.probePort });
      expect(container?.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: service.probePort });
      expect(container?.startupProbe?.httpGet).toMatchObject({ path: '/healthz', port: service.probePort });
    }
  });

  it('gives each service longer to stop than its SHUTDOWN_TIMEOUT_MS (plus any preStop pause)', () => {
    for (const service of SERVICES) {
      const deployment = deploymentOf(service);
      const pod = podSpecOf(deployment);
      const env = k.environmentOf(deployment);
      const preStop = pod.containers[0]?.lifecycle?.preStop?.exec?.command ?? [];
      const pauseInMs = preStop[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
      const shutdownInMs = numberOf(env.SHUTDOWN_TIMEOUT_MS, 30_000);
      expect((pod.terminationGracePeriodSeconds ?? 30) * 1000, service.name).toBeGreaterThan(shutdownInMs + pauseInMs);
    }
  });

  it('exposes the API through the api-service load balancer, keeping client addresses (per-address limits)', () => {
    const service = k.one(Service, 'api-service');
    const api = deploymentOf(SERVICES[0] as ServiceSpec);
    expect(service.spec?.type).toBe('LoadBalancer');
    expect(service.spec?.externalTrafficPolicy).toBe('Local');
    expect(matches(service.spec?.selector, podLabelsOf(api))).toBe(true);
    const ports = podSpecOf(api).containers[0]?.ports?.map((p) => p.name);
    expect(service.spec?.ports?.map((p) => p.targetPort)).toStrictEqual(['http']);
    expect(ports).toContain('http');
  });

  it('covers every service with a PodDisruptionBudget', () => {
    for (const service of SERVICES) {
      const budgets = k
        .all(PodDisruptionBudget)
        .filter((b) => matches(b.spec?.selector?.matchLabels, podLabelsOf(deploymentOf(service))));
      expect(budgets, service.name).toHaveLength(1);
      expect(budgets[0]?.spec?.maxUnavailable ?? budgets[0]?.spec?.minAvailable, service.name).toBeDefined();
    }
  });

  it('denies all traffic by default, and every network policy selects pods that exist', () => {
    const policies = k.all(NetworkPolicy);
    const denyAll = policies.find((p) => p.metadata?.name === 'default-deny');
    expect(denyAll?.spec?.podSelector).toStrictEqual({});
    expect(denyAll?.spec?.policyTypes).toStrictEqual(['Ingress', 'Egress']);
    expect(denyAll?.spec?.ingress ?? []).toStrictEqual([]);
    expect(denyAll?.spec?.egress ?? []).toStrictEqual([]);

    const pods = [...k.all(Deployment), ...k.all(StatefulSet)].map(podLabelsOf);
    for (const policy of policies.filter((p) => p !== denyAll)) {
      const selector = policy.spec?.podSelector?.matchLabels;
      const selected = selector === undefined ? pods : pods.filter((labels) => matches(selector, labels));
      expect(selected.length, policy.metadata?.name).toBeGreaterThan(0);
    }
    const apiIngress = policies.find((p) =>
      matches(p.spec?.podSelector?.matchLabels, { 'app.kubernetes.io/name': 'api' }),
    );
    expect(apiIngress?.spec?.ingress?.[0]?.ports?.map((p) => p.port)).toStrictEqual(['http']);
  });

  it("sets only environment variables the service's config schema knows, with values it accepts", () => {
    for (const service of SERVICES) {
      const env = k.environmentOf(deploymentOf(service));
      const known = new Set(Object.keys(service.schema.shape));
      expect(
        Object.keys(env).filter((name) => !known.has(name)),
        service.name,
      ).toStrictEqual([]);
      const result = service.schema.safeParse(env);
      expect(result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [], service.name).toStrictEqual(
        [],
      );
      expect(env.ORCH_MODE, service.name).toBe(overlay);
    }
  });

  it('scales the actor and spark workers with KEDA: one trigger per lane, lanes summed, the numbers of POOL_SCALING', () => {
    const scaled = k.all(ScaledObject);
    expect(scaled).toHaveLength(AKS_POOL_QUEUES.length);
    for (const object of scaled) {
      // Every ScaledObject targets an existing Deployment, whose replica count it then owns.
      const target = k.one(Deployment, object.spec.scaleTargetRef.name);
      expect(object.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
      expect(target.spec?.replicas).toBeUndefined();

      const pool = `${k.environmentOf(target).WORKER_POOL}-jobs` as keyof typeof POOL_SCALING;
      const rule = POOL_SCALING[pool];
      expect(rule, `${object.metadata?.name} scales pool ${pool}`).toBeDefined();
      expect(object.spec.minReplicaCount).toBe(rule.minReplicas);
      expect(object.spec.maxReplicaCount).toBe(rule.maxReplicas);
      expect(object.spec.pollingInterval).toBeGreaterThan(0);
      expect(object.spec.cooldownPeriod).toBeGreaterThan(0);

      const behavior = object.spec.advanced?.horizontalPodAutoscalerConfig?.behavior;
      expect((behavior?.scaleDown?.stabilizationWindowSeconds ?? 0) * 1000).toBe(rule.scaleDownStabilizationInMs);
      // Gradual: every scale-down policy removes at most one pod, or 50%, per minute or longer.
      expect(behavior?.scaleDown?.policies?.length).toBeGreaterThan(0);
      for (const policy of behavior?.scaleDown?.policies ?? []) {
        expect(policy.periodSeconds).toBeGreaterThanOrEqual(60);
        expect(policy.value).toBeLessThanOrEqual(policy.type === 'Pods' ? 1 : 50);
      }
      // The pace the local autoscaler models is the ScaledObject's, policy for policy.
      const paceOf = (rules: NonNullable<typeof behavior>['scaleUp']) => ({
        select: rules?.selectPolicy,
        policies: (rules?.policies ?? []).map((p) => ({
          type: p.type,
          value: p.value,
          periodInMs: p.periodSeconds * 1000,
        })),
      });
      expect(paceOf(behavior?.scaleUp)).toStrictEqual(rule.scaleUp);
      expect(paceOf(behavior?.scaleDown)).toStrictEqual(rule.scaleDown);

      // The lanes are summed against the per-replica target, as POOL_SCALING's autoscaler sums them.
      const modifiers = object.spec.advanced?.scalingModifiers;
      expect(modifiers?.formula?.replace(/\s+/g, '')).toBe(
        lanesOf(pool)
          .map((l) => l.dispatchClass)
          .join('+'),
      );
      expect(Number(modifiers?.target)).toBe(rule.messagesPerReplica);
      expect(modifiers?.metricType).toBe('AverageValue');

      const lanes = lanesOf(pool);
      expect(object.spec.triggers.map((t) => t.name)).toStrictEqual(lanes.map((l) => l.dispatchClass));
      expect(object.spec.triggers.map((t) => t.metadata.queueName)).toStrictEqual(lanes.map((l) => l.queue));
      for (const trigger of object.spec.triggers) {
        const target = trigger.type === 'rabbitmq' ? trigger.metadata.value : trigger.metadata.messageCount;
        expect(Number(target)).toBe(rule.messagesPerReplica);
        k.one(TriggerAuthentication, trigger.authenticationRef?.name ?? '');
      }
    }
  });
});

describe('the strict schema check: an unknown field anywhere in an object fails, though the models validate it', () => {
  /** A copy of the raw object of a rendered one, to change. */
  const copyOf = <T extends { metadata?: { name?: string } }>(
    k: Manifests,
    type: abstract new (...args: never[]) => T,
    name: string,
  ) => structuredClone(k.raw[k.models.indexOf(k.one(type, name))]) as RawObject & T;

  it('given a container with livenesProbe (a typo) and a probe with a misspelt path, then it reports both', () => {
    const deployment = copyOf(rendered.local, Deployment, 'api');
    const [container] = podSpecOf(deployment).containers;
    if (container?.readinessProbe?.httpGet === undefined) throw new Error('api has no HTTP readiness probe');
    Object.assign(container.readinessProbe.httpGet, { paht: '/readyz' });
    Object.assign(container, { livenesProbe: container.livenessProbe });
    delete container.livenessProbe;

    expect(() => new Deployment(deployment).validate()).not.toThrow();
    expect(problemsOf(deployment)).toStrictEqual([
      'Deployment api: unknown field /spec/template/spec/containers/0/livenesProbe',
      'Deployment api: unknown field /spec/template/spec/containers/0/readinessProbe/httpGet/paht',
    ]);
  });

  it('given a ScaledObject with a bogus field in its spec, in a trigger and in its HPA behaviour, then it reports each', () => {
    const k = rendered.azure;
    const scaled = copyOf(k, ScaledObject, k.all(ScaledObject)[0]?.metadata?.name ?? '');
    const [trigger] = scaled.spec.triggers;
    const scaleDown = scaled.spec.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown;
    if (trigger === undefined || scaleDown === undefined) throw new Error('no trigger or scale-down behaviour');
    // The names of the HPA's fields, and a trigger metadata key one level too high.
    Object.assign(scaled.spec, { minReplicas: 1 });
    Object.assign(trigger, { queueName: trigger.metadata.queueName });
    Object.assign(scaleDown, { stabilizationWindow: 300 });

    expect(() => new ScaledObject(scaled).validate()).not.toThrow();
    const name = `ScaledObject ${scaled.metadata.name}`;
    expect(problemsOf(scaled)).toStrictEqual([
      `${name}: unknown field /spec/minReplicas`,
      `${name}: unknown field /spec/advanced/horizontalPodAutoscalerConfig/behavior/scaleDown/stabilizationWindow`,
      `${name}: unknown field /spec/triggers/0/queueName`,
    ]);
  });

  it('given a PodMonitor (Prometheus Operator schema) and a SecretProviderClass (hand-written schema) with bogus fields, then it reports each', () => {
    const podMonitor = copyOf(monitoring, PodMonitor, 'orchestrator-services');
    Object.assign(podMonitor.spec.podMetricsEndpoints?.[0] ?? {}, { scrapeInterval: '30s' });
    const provider = copyOf(rendered.azure, SecretProviderClass, 'api-keys');
    Object.assign(provider, { spec: { ...provider.spec, secretObject: [] } });
    Object.assign(provider.metadata ?? {}, { label: {} });

    expect(problemsOf(podMonitor)).toStrictEqual([
      'PodMonitor orchestrator-services: unknown field /spec/podMetricsEndpoints/0/scrapeInterval',
    ]);
    expect(problemsOf(provider)).toStrictEqual([
      'SecretProviderClass api-keys: unknown field /metadata/label',
      'SecretProviderClass api-keys: unknown field /spec/secretObject',
    ]);
  });

  it('given fields of the wrong type, or a kind without a schema, then it reports those too', () => {
    const service = copyOf(rendered.local, Service, 'api-service');
    Object.assign(service.spec?.ports?.[0] ?? {}, { port: 'http' });
    const unknownKind = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };

    expect(problemsOf(service)).toStrictEqual(['Service api-service: data/spec/ports/0/port must be integer']);
    expect(problemsOf(unknownKind)).toStrictEqual(['Widget w: no schema for example.com/v1/Widget']);
  });
});

describe('k8s/overlays/azure: Azure specifics', () => {
  const k = rendered.azure;

  it('scales on Service Bus with workload identity: azure-servicebus triggers in the services namespace', () => {
    const namespace = k.dataOf('ConfigMap', configMapNameOf(k, 'orchestrator-config')).SERVICEBUS_NAMESPACE ?? '';
    expect(namespace).toMatch(/^[a-z0-9-]+\.servicebus\.windows\.net$/);
    for (const object of k.all(ScaledObject)) {
      for (const trigger of object.spec.triggers) {
        expect(trigger.type).toBe('azure-servicebus');
        // KEDA wants the short name and appends the suffix itself.
        expect(trigger.metadata.namespace).toBe(namespace.split('.')[0]);
        expect(trigger.metadata.connectionFromEnv).toBeUndefined();
      }
    }
    const auth = k.one(TriggerAuthentication, 'servicebus');
    expect(auth.spec.podIdentity?.provider).toBe('azure-workload');
    expect(auth.spec.podIdentity?.identityId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('holds no secrets: each service logs in to PostgreSQL as its own role, with an Entra ID token', () => {
    expect(k.all(Secret)).toStrictEqual([]);
    for (const service of SERVICES) {
      const env = k.environmentOf(k.one(Deployment, service.name));
      const url = new URL(env.DATABASE_URL ?? '');
      expect(url.username, service.name).toBe(service.name);
      expect(url.password, service.name).toBe('');
      expect(url.searchParams.get('sslmode'), service.name).toBe('require');
      expect(env.DATABASE_ENTRA_AUTH, service.name).toBe('true');
      expect(env.AZURE_STORAGE_ACCOUNT_URL, service.name).toMatch(/^https:\/\//);
      expect(env.AZURE_STORAGE_CONNECTION_STRING, service.name).toBeUndefined();
    }
    const submitter = k.environmentOf(k.one(Deployment, 'batch-submitter'));
    expect(submitter.AZURE_BATCH_ACCOUNT_URL).toMatch(/^https:\/\//);
    expect(submitter.AZURE_BATCH_TASK_IMAGE).toMatch(/\/orchestrator\/(actor|spark)-worker:/);
  });

  it('keeps the workload-identities values out of the cluster (a local-config object)', () => {
    expect(k.raw.filter((o) => o.metadata.name.startsWith('workload-identities'))).toStrictEqual([]);
    expect(k.raw.filter((o) => o.metadata.name.startsWith('key-vault'))).toStrictEqual([]);
  });

  it('mounts the API keys from Key Vault (CSI driver, the api identity) where API_KEYS_FILE points', () => {
    const api = k.one(Deployment, 'api');
    const env = k.environmentOf(api);
    const pod = api.spec?.template.spec;
    const volume = pod?.volumes?.find((v) => v.name === 'api-keys');
    expect(volume?.secret).toBeUndefined();
    expect(volume?.csi).toMatchObject({ driver: 'secrets-store.csi.k8s.io', readOnly: true });
    const providerName = volume?.csi?.volumeAttributes?.secretProviderClass ?? '';
    const provider = k.one(SecretProviderClass, providerName);
    expect(provider.spec?.provider).toBe('azure');
    expect(provider.spec?.parameters?.usePodIdentity).toBe('false');
    expect(provider.spec?.parameters?.clientID).toBe(
      k.one(ServiceAccount, 'api').metadata?.annotations?.['azure.workload.identity/client-id'],
    );
    expect(String(provider.spec?.parameters?.objects)).toMatch(/objectName: api-keys\s+objectType: secret/);
    const mount = pod?.containers[0]?.volumeMounts?.find((m) => m.name === 'api-keys');
    expect(mount?.readOnly).toBe(true);
    // The mounted object's file name is its objectName.
    expect(env.API_KEYS_FILE).toBe(`${mount?.mountPath}/api-keys`);
  });
});

describe('k8s/overlays/local: minikube specifics', () => {
  const k = rendered.local;
  const servicePorts = (name: string) => k.one(Service, name).spec?.ports?.map((p) => p.port) ?? [];

  it('gives the API a key list from a Secret, holding only the hash of the documented throwaway admin key', () => {
    const api = k.one(Deployment, 'api');
    const env = k.environmentOf(api);
    const volume = api.spec?.template.spec?.volumes?.find((v) => v.name === 'api-keys');
    const secretName = volume?.secret?.secretName ?? '';
    const list = k.dataOf('Secret', secretName)['api-keys'] ?? '';
    const entries = parseApiKeys(list, secretName);
    expect(entries).toStrictEqual([
      { tenant: 'local', admin: true, sha256: hashApiKey('orch_local-minikube-admin-key') },
    ]);
    const mount = api.spec?.template.spec?.containers[0]?.volumeMounts?.find((m) => m.name === 'api-keys');
    expect(env.API_KEYS_FILE).toBe(`${mount?.mountPath}/api-keys`);
  });

  it('runs RabbitMQ, PostgreSQL and Azurite in the cluster, where the services connection settings point', () => {
    const env = k.environmentOf(k.one(Deployment, 'scheduler'));
    const rabbit = new URL(env.RABBITMQ_URL ?? '');
    const management = new URL(env.RABBITMQ_MANAGEMENT_URL ?? '');
    const database = new URL(env.DATABASE_URL ?? '');
    const blobEndpoint = /BlobEndpoint=([^;]+)/.exec(env.AZURE_STORAGE_CONNECTION_STRING ?? '')?.[1];
    const blob = new URL(blobEndpoint ?? '');
    for (const [url, port] of [
      [rabbit, 5672],
      [management, 15672],
      [database, 5432],
      [blob, 10000],
    ] as const) {
      k.one(StatefulSet, url.hostname);
      expect(Number(url.port), url.href).toBe(port);
      expect(servicePorts(url.hostname), url.href).toContain(port);
    }
    // The broker and the database create the users the services log in as.
    const broker = k.environmentOf(k.one(StatefulSet, rabbit.hostname));
    expect([rabbit.username, rabbit.password]).toStrictEqual([
      broker.RABBITMQ_DEFAULT_USER,
      broker.RABBITMQ_DEFAULT_PASS,
    ]);
    expect([management.username, management.password]).toStrictEqual([rabbit.username, rabbit.password]);
    const postgres = k.environmentOf(k.one(StatefulSet, database.hostname));
    expect([database.username, database.password, database.pathname]).toStrictEqual([
      postgres.POSTGRES_USER,
      postgres.POSTGRES_PASSWORD,
      `/${postgres.POSTGRES_DB}`,
    ]);
  });

  it('scales on RabbitMQ queue length over the management API, so unacknowledged messages count', () => {
    for (const object of k.all(ScaledObject)) {
      for (const trigger of object.spec.triggers) {
        expect(trigger.type).toBe('rabbitmq');
        expect(trigger.metadata).toMatchObject({ protocol: 'http', mode: 'QueueLength' });
      }
    }
    const auth = k.one(TriggerAuthentication, 'rabbitmq');
    const hostRef = auth.spec.secretTargetRef?.find((r) => r.parameter === 'host');
    const host = new URL(k.dataOf('Secret', hostRef?.name ?? '')[hostRef?.key ?? ''] ?? '');
    // KEDA runs in another namespace: the full service name, the management port, a trailing slash.
    expect(host.hostname).toBe(`rabbitmq.${NAMESPACE}.svc.cluster.local`);
    expect(Number(host.port)).toBe(15672);
    expect(host.pathname).toBe('/');
  });
});

describe('k8s/monitoring: Prometheus scrapes every service of either overlay', () => {
  const podMonitors = monitoring.all(PodMonitor);
  /** The labels of the namespace Prometheus runs in, as the NetworkPolicy expects it. */
  const PROMETHEUS_NAMESPACE = { 'kubernetes.io/metadata.name': 'monitoring' };

  /** The container port a NetworkPolicy's or PodMonitor's port (a name or a number) means in a pod. */
  const containerPortOf = (pod: IPodSpec, port: string | number | undefined): IContainerPort | undefined =>
    pod.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === port || p.containerPort === port);

  /** Whether a policy lets pods labelled `labels` take connections on `port` from Prometheus' namespace. */
  const admitsPrometheus = (policy: NetworkPolicy, labels: Record<string, string>, port: IContainerPort) => {
    const selector = policy.spec?.podSelector?.matchLabels ?? {};
    if (Object.keys(selector).length > 0 && !matches(selector, labels)) return false;
    return (policy.spec?.ingress ?? []).some((rule) => {
      const portAllowed =
        (rule.ports ?? []).length === 0 ||
        (rule.ports ?? []).some(
          (p) =>
            (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP') &&
            (p.port === port.name || p.port === port.containerPort),
        );
      const sourceAllowed =
        (rule.from ?? []).length === 0 ||
        (rule.from ?? []).some(
          (peer) =>
            peer.ipBlock === undefined &&
            peer.podSelector === undefined &&
            matches(peer.namespaceSelector?.matchLabels, PROMETHEUS_NAMESPACE),
        );
      return portAllowed && sourceAllowed;
    });
  };

  it('renders two PodMonitors, a NetworkPolicy, the PrometheusRule and the dashboard, strictly valid (no unknown fields, Prometheus Operator schemas), in the orchestrator namespace', () => {
    expect(monitoring.raw.map((o) => `${o.kind} ${o.metadata.name}`).sort()).toStrictEqual([
      'ConfigMap orchestrator-grafana-dashboard',
      'NetworkPolicy allow-prometheus-scrape',
      'PodMonitor orchestrator-api',
      'PodMonitor orchestrator-services',
      'PrometheusRule orchestrator',
    ]);
    expect(monitoring.raw.flatMap(problemsOf), MANIFEST_BUG).toStrictEqual([]);
    for (const { kind, metadata } of monitoring.raw) {
      expect(metadata.namespace, `${kind} ${metadata.name}`).toBe(NAMESPACE);
    }
  });

  describe.each(OVERLAYS)('given the %s overlay', (overlay) => {
    const k = rendered[overlay];
    const policies = [...k.all(NetworkPolicy), ...monitoring.all(NetworkPolicy)];

    it.each(SERVICES.map((s) => [s.name, s] as const))(
      'then %s is scraped once, on the port its code serves /metrics on, which its network policies open to Prometheus',
      (_, service) => {
        const deployment = k.one(Deployment, service.name);
        const pod = podSpecOf(deployment);
        const labels = podLabelsOf(deployment) ?? {};
        // A target is a selected pod with the endpoint's port; an endpoint without the port makes none.
        const targets = podMonitors
          .filter((m) => matches(m.spec.selector.matchLabels, labels))
          .flatMap((m) => (m.spec.podMetricsEndpoints ?? []).map((endpoint) => ({ monitor: m, endpoint })))
          .filter(({ endpoint }) => containerPortOf(pod, endpoint.port) !== undefined);
        expect(targets).toHaveLength(1);
        const { endpoint } = targets[0] as (typeof targets)[number];
        expect(endpoint.path ?? '/metrics').toBe('/metrics');

        const env = k.environmentOf(deployment);
        const port = containerPortOf(pod, endpoint.port) as IContainerPort;
        if (service.probePort === 'http') {
          // The API: its own port, behind an admin key sent as a bearer token from a Secret.
          expect(port.containerPort).toBe(numberOf(env.PORT, 8000));
          expect(endpoint.authorization?.type ?? 'Bearer').toBe('Bearer');
          expect(endpoint.authorization?.credentials?.name).toMatch(/^[a-z0-9-]+$/);
          expect(endpoint.authorization?.credentials?.key).toMatch(/^\w+$/);
        } else {
          expect(port.containerPort).toBe(numberOf(env.OPS_PORT, 9464));
          expect(endpoint.authorization).toBeUndefined();
        }
        const admitting = policies.filter((p) => admitsPrometheus(p, labels, port)).map((p) => p.metadata?.name);
        expect(admitting.length, `${service.name} port ${port.name}`).toBeGreaterThan(0);
      },
    );

    it("then the scrape policy's ports are container ports of every pod it selects that serves metrics on them", () => {
      const scrape = monitoring.one(NetworkPolicy, 'allow-prometheus-scrape');
      const selected = k.all(Deployment).filter((d) => matches(scrape.spec?.podSelector?.matchLabels, podLabelsOf(d)));
      expect(selected.map((d) => d.metadata?.name).sort()).toStrictEqual(SERVICES.map((s) => s.name).sort());
      for (const rule of scrape.spec?.ingress ?? []) {
        for (const { port } of rule.ports ?? []) {
          const serving = selected.filter((d) => containerPortOf(podSpecOf(d), port) !== undefined);
          expect(serving.map((d) => d.metadata?.name).sort()).toStrictEqual(
            SERVICES.filter((s) => s.probePort === 'ops')
              .map((s) => s.name)
              .sort(),
          );
        }
      }
    });
  });

  it("given the overlay that kustomization.yaml documents for another Prometheus namespace, then the policy admits that namespace's", async () => {
    // The comment's indented lines from `resources:` on.
    const lines = (await readFile(join(K8S_DIR, 'monitoring/kustomization.yaml'), 'utf8')).split('\n');
    const start = lines.indexOf('#   resources: [<path to>/k8s/monitoring]');
    const end = lines.findIndex((line, i) => i > start && !line.startsWith('#   '));
    const documented = lines
      .slice(start, end)
      .map((line) => line.slice(4))
      .join('\n');
    const dir = await mkdtemp(join(tmpdir(), 'k8s-monitoring-'));
    try {
      const kustomization = documented
        .replace('<path to>/k8s/monitoring', relative(dir, join(K8S_DIR, 'monitoring')))
        .replace('<namespace>', 'prometheus');
      expect(kustomization).toMatch(/^resources:[\s\S]*^patches:/m);
      await writeFile(join(dir, 'kustomization.yaml'), kustomization);
      const policy = parseAllDocuments(kustomize(dir))
        .map((d) => d.toJS() as RawObject & { spec?: NetworkPolicy['spec'] })
        .find((o) => o.kind === 'NetworkPolicy');
      expect(policy?.spec?.ingress?.[0]?.from).toStrictEqual([
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'prometheus' } } },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('probe endpoints: the paths the manifests probe answer 200 on the real servers', () => {
  const logger = createLogger({ service: 'k8s-test', level: 'silent', format: 'json' });
  const probePaths = (name: string) => {
    const container = podSpecOf(rendered.azure.one(Deployment, name)).containers[0];
    return [container?.livenessProbe, container?.readinessProbe, container?.startupProbe].map(
      (probe) => probe?.httpGet?.path ?? '',
    );
  };

  const metricsPathOf = (podMonitor: string) =>
    monitoring.one(PodMonitor, podMonitor).spec.podMetricsEndpoints?.[0]?.path ?? '/metrics';

  it('given the ops server of the scheduler, workers and batch submitter, then their probe and scrape paths answer 200', async () => {
    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      logger,
      metrics: createPrometheusMetrics({ service: 'k8s-test', defaultMetrics: false }),
    });
    try {
      for (const service of SERVICES.filter((s) => s.probePort === 'ops')) {
        for (const path of [...probePaths(service.name), metricsPathOf('orchestrator-services')]) {
          expect((await fetch(`${ops.url}${path}`)).status, `${service.name} ${path}`).toBe(200);
        }
      }
    } finally {
      await ops.close();
    }
  });

  it(
    'given the API, then its probe paths answer 200, and its scrape path the admin key of a bearer token only',
    { timeout: 30_000 },
    async () => {
      const rootDir = await mkdtemp(join(tmpdir(), 'k8s-test-blobs-'));
      const store = await createPgliteJobStore({});
      const transport = createMemoryTransport();
      const blobs = createFsBlobStore({ rootDir });
      const key = 'orch_k8s-test-metrics-key';
      const app = await buildApp(
        {
          store,
          transport,
          blobs,
          handlers: createHandlerRegistry(),
          logger,
          metrics: createPrometheusMetrics({ service: 'api', defaultMetrics: false }),
        },
        { maxAttempts: 3, apiKeys: parseApiKeys(`metrics:${hashApiKey(key)}:admin`, 'test') },
      );
      try {
        for (const path of probePaths('api')) {
          expect((await app.inject({ method: 'GET', url: path })).statusCode, path).toBe(200);
        }
        const url = metricsPathOf('orchestrator-api');
        const scrape = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
        expect(scrape.statusCode).toBe(200);
        expect(scrape.body).toContain('orch_queue_depth');
        expect((await app.inject({ method: 'GET', url })).statusCode).toBe(401);
      } finally {
        await app.close();
        await Promise.allSettled([transport.close(), blobs.close(), store.close()]);
        await rm(rootDir, { recursive: true, force: true });
      }
    },
  );
});

/** The generated (hash-suffixed) name of a ConfigMap. */
function configMapNameOf(k: Manifests, name: string): string {
  const found = k.all(ConfigMap).find((c) => c.metadata?.name?.startsWith(`${name}-`) || c.metadata?.name === name);
  if (found?.metadata?.name === undefined) throw new Error(`no ConfigMap ${name}`);
  return found.metadata.name;
}
