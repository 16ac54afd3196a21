import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli.ts';
import type { CliIo } from '../../src/cli.ts';

/** A request the stub received. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The raw body ('' when none was sent). */
  body: string;
}

export interface StubAnswer {
  status?: number;
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string;
  headers?: Record<string, string>;
  /** Never answer (for timeouts). */
  hang?: boolean;
}

export type StubRoute = (request: RecordedRequest) => StubAnswer | Promise<StubAnswer>;

export interface StubApi {
  url: string;
  requests: RecordedRequest[];
  /** Routes by `METHOD /path` (path without the query); unknown routes answer 404 ROUTE_NOT_FOUND. */
  routes: Map<string, StubRoute>;
  close(): Promise<void>;
}

/** A tiny stand-in for the API on a loopback port: records every request, answers canned JSON. */
export async function startStubApi(routes: Record<string, StubRoute> = {}): Promise<StubApi> {
  const requests: RecordedRequest[] = [];
  const table = new Map(Object.entries(routes));
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stub');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const route = table.get(`${recorded.method} ${recorded.path}`);
      void Promise.resolve(
        route
          ? route(recorded)
          : { status: 404, body: { code: 'ROUTE_NOT_FOUND', message: `no route for ${recorded.method}` } },
      ).then((answer) => {
        if (answer.hang) return;
        res.writeHead(answer.status ?? 200, {
          'content-type': 'application/json; charset=utf-8',
          ...answer.headers,
        });
        res.end(answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes: table,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A stream that keeps what is written; `isTTY` makes it pass for a terminal. */
export class Capture extends Writable {
  text = '';
  isTTY?: boolean;

  constructor(options: { isTTY?: boolean } = {}) {
    super();
    if (options.isTTY !== undefined) this.isTTY = options.isTTY;
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    callback();
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  stdoutIsTTY?: boolean;
  stderrIsTTY?: boolean;
  /** Receives the SIGINT handler a command installs (watch), to simulate Ctrl-C. */
  onInterrupt?: CliIo['onInterrupt'];
  now?: () => Date;
}

/** Runs the CLI in-process, as `orch <argv…>`, with captured output. */
export async function run(argv: string[], options: RunOptions = {}): Promise<CliRun> {
  const stdout = new Capture(options.stdoutIsTTY === undefined ? {} : { isTTY: options.stdoutIsTTY });
  const stderr = new Capture(options.stderrIsTTY === undefined ? {} : { isTTY: options.stderrIsTTY });
  const code = await runCli(argv, {
    stdout,
    stderr,
    env: options.env ?? {},
    onInterrupt: options.onInterrupt ?? (() => () => {}),
    ...(options.now && { now: options.now }),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** A job as `GET /jobs/{id}` shows it. */
export function jobView(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    job_id: 'job-1',
    status: 'succeeded',
    queue: 'batch-jobs',
    cost: 1.001,
    reason: 'cost 1.001 <= 4',
    priority: 'normal',
    rows: 1000,
    estimated_runtime_sec: 10,
    latency_sensitive: false,
    type: 'synthetic',
    data: {},
    attempts: 1,
    max_attempts: 3,
    created_at: '2025-01-02T03:04:05.000Z',
    updated_at: '2025-01-02T03:04:06.000Z',
    history: [
      { status: 'submitted', at: '2025-01-02T03:04:05.000Z' },
      { status: 'queued', at: '2025-01-02T03:04:05.100Z', note: 'cost 1.001 <= 4' },
      { status: 'running', at: '2025-01-02T03:04:05.200Z' },
      { status: 'succeeded', at: '2025-01-02T03:04:06.000Z' },
    ],
    error: null,
    result_url: '/jobs/job-1/result',
    ...overrides,
  };
}

const depth = (active: number, scheduled = 0, deadLetter = 0) => ({ active, scheduled, dead_letter: deadLetter });

/** `GET /queues/status` as the API answers it. */
export function queuesStatus(): Record<string, unknown> {
  const pool = (high: number, standard: number) => ({
    ...depth(high + standard),
    lanes: { high: depth(high), standard: depth(standard) },
  });
  return {
    queues: {
      jobqueue: pool(0, 2),
      'actor-jobs': pool(1, 0),
      'spark-jobs': pool(0, 0),
      'ml-jobs': { ...depth(3, 1, 2), lanes: { high: depth(0), standard: depth(3, 1, 2) } },
      'batch-jobs': pool(0, 12),
    },
  };
}
