import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface OpsServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** @default '0.0.0.0' (probes come from the kubelet, not from loopback) */
  host?: string;
  logger: Logger;
  /**
   * Named readiness checks, run on every `GET /readyz`: a check passes when it resolves. The process
   * is ready when all pass and {@link OpsServer.setReady} has not been called with `false`.
   */
  readinessChecks?: Readonly<Record<string, () => Promise<unknown>>>;
  /** Served at `GET /metrics` (Prometheus exposition) when given. */
  metrics?: { expose(): Promise<{ contentType: string; body: string }> };
}

export interface OpsServer {
  readonly url: string;
  /** Readiness turns false when shutdown begins, so no new work is routed to a draining process. */
  setReady(ready: boolean): void;
  close(): Promise<void>;
}

/**
 * The operations endpoints of a service without an HTTP API of its own (scheduler, workers, batch
 * submitter), for Kubernetes probes: `GET /healthz` answers 200 while the event loop runs;
 * `GET /readyz` answers 200 when every readiness check passes and 503 (naming the failed checks)
 * otherwise; `GET /metrics` serves Prometheus metrics when given. Anything else is a 404 JSON error.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const checks = Object.entries(options.readinessChecks ?? {});
  let ready = true;

  const readiness = async (): Promise<{ ready: boolean; checks: Record<string, 'ok' | 'failed'> }> => {
    const results = await Promise.all(
      checks.map(async ([name, check]) => {
        try {
          await check();
          return [name, 'ok'] as const;
        } catch (e) {
          options.logger.warn({ err: e, check: name }, 'readiness check failed');
          return [name, 'failed'] as const;
        }
      }),
    );
    return { ready: ready && results.every(([, state]) => state === 'ok'), checks: Object.fromEntries(results) };
  };

  const server = createServer((request, response) => {
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
    };
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${request.method} is not allowed` } });
    } else if (path === '/healthz') {
      send(200, { status: 'ok' });
    } else if (path === '/metrics' && options.metrics) {
      options.metrics.expose().then(
        ({ contentType, body }) => {
          response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
          response.end(body);
        },
        (e: unknown) => {
          options.logger.error({ err: e }, 'metrics collection failed');
          send(500, { error: { code: 'INTERNAL', message: 'metrics collection failed' } });
        },
      );
    } else if (path === '/readyz') {
      void readiness().then(
        (state) => send(state.ready ? 200 : 503, { status: state.ready ? 'ready' : 'not_ready', checks: state.checks }),
        (e: unknown) => {
          options.logger.error({ err: e }, 'readiness failed');
          send(503, { status: 'not_ready', checks: {} });
        },
      );
    } else {
      send(404, { error: { code: 'ROUTE_NOT_FOUND', message: `no route ${path}` } });
    }
  });
  // Probes are short; don't let an idle keep-alive socket hold shutdown up.
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  options.logger.info({ url }, 'ops endpoints listening (/healthz, /readyz, /metrics)');

  return {
    url,
    setReady(value) {
      ready = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
