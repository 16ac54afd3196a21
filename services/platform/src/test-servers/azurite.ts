import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** Azurite's well-known development account (public, the same in every Azurite). */
const ACCOUNT_NAME = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** How much of Azurite's output is kept for error messages. */
const MAX_OUTPUT_CHARS = 20_000;

export interface StartAzuriteOptions {
  /** Keep blobs in memory only, lost on close. @default true when no `location` is given */
  inMemory?: boolean;
  /** Folder for Azurite's data (created if missing) when not `inMemory`. */
  location?: string;
  /** Blob service port on 127.0.0.1; 0 lets the system pick a free one. @default 0 */
  blobPort?: number;
  /** @default 30_000 */
  startupTimeoutInMs?: number;
}

export interface RunningAzurite {
  /** A shared-key connection string for the development account, for `createAzureBlobStore`. */
  connectionString: string;
  /** e.g. `http://127.0.0.1:41234/devstoreaccount1` */
  blobEndpoint: string;
  /** Stops Azurite (SIGTERM, then SIGKILL after 10 s). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts Azurite's blob service as a child process of this Node (from the `azurite` package, a
 * devDependency), on 127.0.0.1, and resolves once it answers HTTP. Used by integration tests (in
 * memory, on a free port) and by local mode (persistent, under DATA_DIR). The child is killed when
 * this process exits, even without `close()`.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<RunningAzurite> {
  const inMemory = options.inMemory ?? options.location === undefined;
  if (!inMemory && options.location === undefined) {
    throw new TypeError('startAzurite: a location is required unless inMemory is true');
  }
  const location = options.location === undefined ? undefined : resolve(options.location);
  if (!inMemory && location !== undefined) await mkdir(location, { recursive: true });
  const timeoutInMs = options.startupTimeoutInMs ?? 30_000;

  const args = [
    await azuriteBlobEntry(),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(options.blobPort ?? 0),
    '--skipApiVersionCheck',
    '--disableTelemetry',
    '--silent',
    ...(inMemory ? ['--inMemoryPersistence'] : ['--location', location ?? '']),
  ];
  // Azurite runs on this Node: its own `engines` ask for 22+, like ours.
  const child = spawn(process.execPath, args, {
    cwd: inMemory ? tmpdir() : location,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-MAX_OUTPUT_CHARS);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((done) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        done();
      }, 10_000);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    await exited;
  };

  try {
    const baseUrl = await waitForListening(
      () => output,
      () => spawnError ?? (child.exitCode !== null || child.signalCode !== null ? 'exited' : undefined),
      timeoutInMs,
    );
    await waitUntilAnswering(baseUrl, timeoutInMs);
    const blobEndpoint = `${baseUrl}/${ACCOUNT_NAME}`;
    let closing: Promise<void> | undefined;
    return {
      connectionString:
        `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT_NAME};AccountKey=${ACCOUNT_KEY};` +
        `BlobEndpoint=${blobEndpoint};`,
      blobEndpoint,
      close: () => (closing ??= stop()),
    };
  } catch (e) {
    await stop();
    throw new Error(`Azurite did not start: ${e instanceof Error ? e.message : String(e)}\n${output}`, { cause: e });
  }
}

/** The file behind the package's `azurite-blob` bin, wherever npm put the package. */
async function azuriteBlobEntry(): Promise<string> {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve('azurite/package.json');
  } catch (e) {
    throw new Error('the azurite package is not installed (it is a devDependency: run npm install)', { cause: e });
  }
  const { bin } = JSON.parse(await readFile(packageJson, 'utf8')) as { bin?: Record<string, string> };
  const entry = bin?.['azurite-blob'];
  if (entry === undefined) throw new Error(`no azurite-blob bin in ${packageJson}`);
  return join(dirname(packageJson), entry);
}

/**
 * Azurite prints the address it is listening on ("... successfully listens on http://127.0.0.1:N"),
 * which is the only way to learn the port it picked for `--blobPort 0`.
 */
async function waitForListening(
  output: () => string,
  failure: () => Error | string | undefined,
  timeoutInMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const url = /listens on (https?:\/\/[^\s/]+)/.exec(output())?.[1];
    if (url !== undefined) return url;
    const failed = failure();
    if (failed !== undefined) throw failed instanceof Error ? failed : new Error(failed);
    if (Date.now() > deadline) throw new Error(`not listening after ${timeoutInMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Any HTTP response (even an auth error) means the blob service is serving requests. */
async function waitUntilAnswering(baseUrl: string, timeoutInMs: number): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    try {
      const response = await fetch(`${baseUrl}/${ACCOUNT_NAME}?comp=list`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`not answering after ${timeoutInMs} ms`, { cause: e });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
