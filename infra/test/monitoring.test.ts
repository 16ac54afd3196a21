import { readFileSync } from 'node:fs';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

const monitoringFile = (name: string): string =>
  readFileSync(new URL(`../../k8s/monitoring/${name}`, import.meta.url), 'utf8');

interface Panel {
  id: number;
  title: string;
  datasource: { uid: string };
  targets: { expr: string }[];
}
interface RuleFile {
  spec: { groups: { rules: { alert: string; expr: string; for: string }[] }[] };
}

const dashboard = JSON.parse(monitoringFile('grafana-dashboard.json')) as { uid: string; panels: Panel[] };
const ruleDocument = parseYaml(monitoringFile('prometheus-rule.yaml')) as RuleFile;
const rules = ruleDocument.spec.groups.flatMap((g) => g.rules);
const ruleNamed = (alert: string) => rules.find((r) => r.alert === alert);

/** Every metric family the services export (the queue-depth gauges exist once a reader is set). */
async function exportedFamilies(): Promise<Set<string>> {
  const metrics = createPrometheusMetrics({ service: 'test', defaultMetrics: false });
  metrics.observeQueueDepths(() => Promise.resolve([]));
  const families = await metrics.registry.getMetricsAsJSON();
  return new Set(families.map((f) => f.name));
}

/** The orch_* metric names a PromQL expression reads, with histogram suffixes mapped to their family. */
const metricsIn = (expr: string): string[] =>
  [...expr.matchAll(/\borch_[a-z_]+/g)].map(([name]) => name.replace(/_(bucket|sum|count)$/, ''));

describe('monitoring (k8s/monitoring)', () => {
  it('given the Grafana dashboard and the alert rules, then every orch_* metric they read is one the services export', async () => {
    const families = await exportedFamilies();
    const used = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
      ...rules.map((r) => r.expr),
    ].flatMap(metricsIn);

    expect(used.length).toBeGreaterThan(10);
    expect([...new Set(used)].filter((name) => !families.has(name))).toStrictEqual([]);
  });

  it('given the dashboard, then it charts queue depth, replicas, throughput and latency from a selectable data source', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase());
    for (const topic of ['queue depth', 'replicas', 'completed and failed', 'dispatch latency']) {
      expect(titles.some((t) => t.includes(topic))).toBe(true);
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid).toBe('${datasource}');
      expect(panel.targets.length).toBeGreaterThan(0);
    }
  });

  it('given the PrometheusRule, then it validates against the Prometheus Operator schema', () => {
    expect(() => new PrometheusRule(ruleDocument as never).validate()).not.toThrow();
  });

  it('given the PodMonitors, then they validate against the Prometheus Operator schema and scrape /metrics', () => {
    const monitors = parseAllDocuments(monitoringFile('pod-monitors.yaml')).map(
      (d) => new PodMonitor(d.toJS() as never),
    );
    expect(monitors.map((m) => m.metadata?.name)).toStrictEqual(['orchestrator-services', 'orchestrator-api']);
    for (const monitor of monitors) {
      expect(() => monitor.validate(), monitor.metadata?.name).not.toThrow();
      for (const endpoint of monitor.spec.podMetricsEndpoints ?? []) {
        expect(endpoint.path, monitor.metadata?.name).toBe('/metrics');
        expect(endpoint.port, monitor.metadata?.name).toMatch(/^[a-z][a-z0-9-]*$/);
      }
    }
  });

  it('given queue depths, which every API replica exports alike, then each expression takes their max, never their sum', () => {
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...rules.map((r) => r.expr)];
    const reading = exprs.filter((e) => /\borch_queue_depth\b/.test(e));
    expect(reading.length).toBeGreaterThanOrEqual(4);
    for (const expr of reading) {
      const uses = expr.match(/\borch_queue_depth\b/g)?.length ?? 0;
      const maxed = expr.match(/\bmax by \([^)]*\) \(orch_queue_depth\b/g)?.length ?? 0;
      expect(maxed, expr).toBe(uses);
    }
  });

  it('given the alert rules, then they fire on >5% failures for 15 min, any dead letter, and 10 min of growth', () => {
    const failure = ruleNamed('OrchestratorJobFailureRateHigh');
    expect(failure?.for).toBe('15m');
    expect(failure?.expr).toMatch(/orch_jobs_failed_total[\s\S]*>\s*0\.05/);

    const deadLetter = ruleNamed('OrchestratorDeadLetterQueueNotEmpty');
    expect(deadLetter?.expr).toMatch(/orch_queue_depth\{kind="dead_letter"\}\)\s*>\s*0/);

    const growing = ruleNamed('OrchestratorQueueDepthGrowing');
    expect(growing?.for).toBe('10m');
    expect(growing?.expr).toContain('deriv(');
  });
});
