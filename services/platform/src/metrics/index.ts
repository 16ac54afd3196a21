export { createPrometheusMetrics } from './prometheus-metrics.ts';
export type { PrometheusMetrics, PrometheusMetricsOptions, QueueDepthReading } from './prometheus-metrics.ts';
