import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@orch/platform/runtime';
import { workerConfigSchema } from '@orch/workers';
import { embeddedConfigSchema, loadEmbeddedConfig } from '@orch/embedded';
import { loadLocalConfig, localConfigSchema } from '@orch/local';

const exampleUrl = new URL('../../../../.env.example', import.meta.url);

async function exampleEntries(): Promise<Map<string, string>> {
  const text = await readFile(exampleUrl, 'utf8');
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) entries.set(match[1]!, match[2]!);
  }
  return entries;
}

describe('.env.example', () => {
  it('lists every configuration key the services read', async () => {
    const keys = new Set([
      ...Object.keys(embeddedConfigSchema.shape),
      ...Object.keys(workerConfigSchema.shape),
      ...Object.keys(localConfigSchema.shape),
    ]);
    const documented = await exampleEntries();
    expect([...keys].filter((k) => !documented.has(k))).toEqual([]);
    expect([...documented.keys()].filter((k) => !keys.has(k))).toEqual([]);
  });

  it('states the real defaults', async () => {
    const documented = await exampleEntries();
    const defaults = loadEmbeddedConfig({});
    for (const [key, value] of Object.entries(defaults)) {
      expect(String(value), key).toBe(documented.get(key));
    }
    const worker = parseConfig(workerConfigSchema, { WORKER_POOL: 'actor' });
    expect(String(worker.WORKER_CONCURRENCY)).toBe(documented.get('WORKER_CONCURRENCY'));
    const local = loadLocalConfig({});
    expect(local.LOCAL_SERVICES.join(',')).toBe(documented.get('LOCAL_SERVICES'));
    expect(String(local.AZURITE_BLOB_PORT)).toBe(documented.get('AZURITE_BLOB_PORT'));
  });

  it('is a valid configuration as written', async () => {
    const documented = Object.fromEntries(await exampleEntries());
    expect(() => loadEmbeddedConfig(documented)).not.toThrow();
  });

  it('names every bad key in one CONFIG_INVALID error', () => {
    expect(() => loadEmbeddedConfig({ PORT: 'eighty', JOB_MAX_ATTEMPTS: '0' })).toThrow(
      /PORT.*JOB_MAX_ATTEMPTS|JOB_MAX_ATTEMPTS.*PORT/,
    );
  });
});
