import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobMetrics, PoolQueue, Priority, QueueDepth } from '@orch/core';

export interface PrometheusMetricsOptions {
  /** The `service` label on every series (api, scheduler, actor-worker, …, or embedded). */
  service: string;
  /** Process metrics (CPU, memory, event-loop lag, GC). @default true */
  defaultMetrics?: boolean;
}

/** A queue's depth as read for a scrape. */
export interface QueueDepthReading {
  queue: string;
  depth: QueueDepth;
}

export interface PrometheusMetrics extends JobMetrics {
  readonly registry: Registry;
  /** Instruments one HTTP request; `route` is the route pattern (`/jobs/:id`), never the raw URL. */
  httpRequestFinished(method: string, route: string, status: number, durationInMs: number): void;
  /**
   * Reads queue depths at each scrape (only in the process that may read them: the API). A failed
   * read leaves the previous values and counts `orch_queue_depth_read_errors_total`.
   */
  observeQueueDepths(read: () => Promise<readonly QueueDepthReading[]>): void;
  /** The exposition text and its content type, for `GET /metrics`. */
  expose(): Promise<{ contentType: string; body: string }>;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
const HTTP_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The orchestrator's Prometheus metrics, in a registry of their own (no global state, so tests and
 * the all-in-one process can hold several). Names and labels are the contract of the Grafana
 * dashboard and the alert rules under `k8s/monitoring/`; change them together.
 */
export function createPrometheusMetrics(options: PrometheusMetricsOptions): PrometheusMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const submitted = new Counter({
    name: 'orch_jobs_submitted_total',
    help: 'Jobs accepted by the API, by the pool queue the classifier will route them to and priority.',
    labelNames: ['queue', 'priority'] as const,
    registers,
  });
  const routed = new Counter({
    name: 'orch_jobs_routed_total',
    help: 'Jobs routed by the classifier, by pool queue and priority.',
    labelNames: ['queue', 'priority'] as const,
    registers,
  });
  const completed = new Counter({
    name: 'orch_jobs_completed_total',
    help: 'Jobs that succeeded, by pool queue and priority.',
    labelNames: ['queue', 'priority'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'orch_jobs_failed_total',
    help: 'Jobs that failed for good (retries exhausted or not retryable), by pool queue and priority.',
    labelNames: ['queue', 'priority'] as const,
    registers,
  });
  const retried = new Counter({
    name: 'orch_job_retries_total',
    help: 'Failed attempts that will be retried, by pool queue and priority.',
    labelNames: ['queue', 'priority'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'orch_job_duration_seconds',
    help: 'Run time of the last attempt of finished jobs.',
    labelNames: ['queue', 'outcome'] as const,
    buckets: SECONDS,
    registers,
  });
  const dispatchLatency = new Histogram({
    name: 'orch_dispatch_latency_seconds',
    help: 'From submission (or a retry falling due) to the start of the attempt.',
    labelNames: ['queue', 'priority'] as const,
    buckets: SECONDS,
    registers,
  });
  const inFlight = new Gauge({
    name: 'orch_worker_in_flight',
    help: 'Jobs running in this process, by pool queue.',
    labelNames: ['queue'] as const,
    registers,
  });
  const batchTasks = new Gauge({
    name: 'orch_batch_tasks',
    help: 'Batch tasks tracked by the batch submitter, by pool queue and state.',
    labelNames: ['queue', 'state'] as const,
    registers,
  });
  const httpRequests = new Counter({
    name: 'orch_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'orch_http_request_duration_seconds',
    help: 'HTTP request handling time, by method and route pattern.',
    labelNames: ['method', 'route'] as const,
    buckets: HTTP_SECONDS,
    registers,
  });

  const seconds = (ms: number): number => Math.max(0, ms) / 1000;

  return {
    registry,
    jobsSubmitted(queue: PoolQueue, priority: Priority, count: number) {
      submitted.inc({ queue, priority }, count);
    },
    jobRouted(queue: PoolQueue, priority: Priority) {
      routed.inc({ queue, priority });
    },
    jobStarted(queue: PoolQueue, priority: Priority, dispatchLatencyInMs: number) {
      dispatchLatency.observe({ queue, priority }, seconds(dispatchLatencyInMs));
    },
    jobFinished(queue: PoolQueue, priority: Priority, outcome: 'succeeded' | 'failed', durationInMs: number) {
      (outcome === 'succeeded' ? completed : failed).inc({ queue, priority });
      duration.observe({ queue, outcome }, seconds(durationInMs));
    },
    jobRetried(queue: PoolQueue, priority: Priority) {
      retried.inc({ queue, priority });
    },
    inFlightChanged(queue: PoolQueue, delta: number) {
      inFlight.inc({ queue }, delta);
    },
    batchTasksObserved(queue: PoolQueue, counts: { pending: number; running: number }) {
      batchTasks.set({ queue, state: 'pending' }, counts.pending);
      batchTasks.set({ queue, state: 'running' }, counts.running);
    },
    httpRequestFinished(method: string, route: string, status: number, durationInMs: number) {
      httpRequests.inc({ method, route, status: String(status) });
      httpDuration.observe({ method, route }, seconds(durationInMs));
    },
    observeQueueDepths(read) {
      const readErrors = new Counter({
        name: 'orch_queue_depth_read_errors_total',
        help: 'Scrapes whose queue depth read failed (the depth gauges then keep their last values).',
        registers,
      });
      new Gauge({
        name: 'orch_queue_depth',
        help: 'Messages in a physical queue, by kind: active (waiting or locked), scheduled, dead_letter.',
        labelNames: ['queue', 'kind'] as const,
        registers,
        async collect() {
          let readings: readonly QueueDepthReading[];
          try {
            readings = await read();
          } catch {
            readErrors.inc();
            return;
          }
          for (const { queue, depth } of readings) {
            this.set({ queue, kind: 'active' }, depth.active);
            this.set({ queue, kind: 'scheduled' }, depth.scheduled);
            this.set({ queue, kind: 'dead_letter' }, depth.deadLetter);
          }
        },
      });
    },
    async expose() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
