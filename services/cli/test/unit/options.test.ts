import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_API_URL,
  MAX_REQUEST_BODY_BYTES,
  integerBetween,
  parseApiUrl,
  parseBoolean,
  parseData,
  parseIdempotencyKey,
  parseNonNegativeInteger,
  parseNonNegativeNumber,
  parseSecondsAsMs,
  planChunks,
  resolveApiKey,
  resolveApiUrl,
  toSubmission,
} from '../../src/options.ts';
import { UsageError } from '../../src/errors.ts';

describe('flags → submission body', () => {
  it('when no flag is given, then the body is empty, so the API applies its defaults', () => {
    expect(toSubmission({})).toEqual({});
  });

  it('when every flag is given, then each becomes its snake_case field', () => {
    expect(
      toSubmission({
        type: 'synthetic',
        rows: 20_000,
        estimatedRuntimeSec: 30.5,
        priority: 'high',
        latencySensitive: true,
        data: { seed: 7 },
      }),
    ).toEqual({
      type: 'synthetic',
      rows: 20_000,
      estimated_runtime_sec: 30.5,
      priority: 'high',
      latency_sensitive: true,
      data: { seed: 7 },
    });
  });

  it('when a value is zero, then it is still sent', () => {
    expect(toSubmission({ rows: 0, estimatedRuntimeSec: 0 })).toEqual({ rows: 0, estimated_runtime_sec: 0 });
  });
});

describe('option value parsers', () => {
  it.each(['0', '7', '1000000000'])('accepts the integer %s', (value) => {
    expect(parseNonNegativeInteger(value)).toBe(Number(value));
  });

  it.each(['-1', '1.5', '', ' 3', '1e3', '0x10', 'abc', '99999999999999999999'])(
    'rejects %j as an integer ≥ 0',
    (value) => {
      expect(() => parseNonNegativeInteger(value)).toThrow(InvalidArgumentError);
    },
  );

  it.each([
    ['0', 0],
    ['10', 10],
    ['2.5', 2.5],
    ['.5', 0.5],
    ['1e2', 100],
  ])('accepts the number %s', (value, expected) => {
    expect(parseNonNegativeNumber(value)).toBe(expected);
  });

  it.each(['-1', '', 'NaN', 'Infinity', '1,5', '0x10'])('rejects %j as a number ≥ 0', (value) => {
    expect(() => parseNonNegativeNumber(value)).toThrow(InvalidArgumentError);
  });

  it('checks integer ranges and names them in the message', () => {
    const parse = integerBetween(1, 500);
    expect(parse('1')).toBe(1);
    expect(parse('500')).toBe(500);
    expect(() => parse('0')).toThrow('from 1 to 500');
    expect(() => parse('501')).toThrow('from 1 to 500');
  });

  it('reads seconds as milliseconds and rejects zero', () => {
    expect(parseSecondsAsMs('2')).toBe(2000);
    expect(parseSecondsAsMs('0.25')).toBe(250);
    expect(() => parseSecondsAsMs('0')).toThrow(InvalidArgumentError);
    expect(() => parseSecondsAsMs('-1')).toThrow(InvalidArgumentError);
  });

  it('accepts http and https API URLs, with a path prefix, and nothing else', () => {
    expect(parseApiUrl('http://127.0.0.1:8000')).toBe('http://127.0.0.1:8000');
    expect(parseApiUrl('https://orch.example.com/api/')).toBe('https://orch.example.com/api/');
    expect(() => parseApiUrl('127.0.0.1:8000')).toThrow(InvalidArgumentError);
    expect(() => parseApiUrl('ftp://host')).toThrow('http:// or https://');
    expect(() => parseApiUrl('http://host/?x=1')).toThrow('query');
  });

  it('accepts idempotency keys of visible ASCII characters only', () => {
    expect(parseIdempotencyKey('order-7731')).toBe('order-7731');
    expect(() => parseIdempotencyKey('with space')).toThrow(InvalidArgumentError);
    expect(() => parseIdempotencyKey('')).toThrow(InvalidArgumentError);
    expect(() => parseIdempotencyKey('k'.repeat(241))).toThrow(InvalidArgumentError);
  });
});

describe('--data', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'orch-cli-data-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('when it is a JSON object, then it is the data', () => {
    expect(parseData('{"seed": 7, "nested": {"a": [1]}}')).toEqual({ seed: 7, nested: { a: [1] } });
  });

  it.each(['[1,2]', '"text"', '7', 'null'])('when it is the JSON %s, not an object, then it is rejected', (value) => {
    expect(() => parseData(value)).toThrow('must be a JSON object');
  });

  it('when it is not JSON, then the message says so', () => {
    expect(() => parseData('{seed: 7}')).toThrow('is not JSON');
  });

  it('when it is @file, then the file is read', async () => {
    const file = path.join(dir, 'input.json');
    await writeFile(file, '{"from": "file"}');
    expect(parseData(`@${file}`)).toEqual({ from: 'file' });
  });

  it('when the @file is missing, then the message names it', () => {
    const file = path.join(dir, 'missing.json');
    expect(() => parseData(`@${file}`)).toThrow(`Cannot read ${file}`);
  });
});

describe('API URL and key', () => {
  it('prefers the flag, then ORCH_API_URL, then the default', () => {
    const env = { ORCH_API_URL: 'http://env:1' };
    expect(resolveApiUrl('http://flag:2', env)).toBe('http://flag:2');
    expect(resolveApiUrl(undefined, env)).toBe('http://env:1');
    expect(resolveApiUrl(undefined, {})).toBe(DEFAULT_API_URL);
    expect(resolveApiUrl(undefined, { ORCH_API_URL: '' })).toBe(DEFAULT_API_URL);
  });

  it('when ORCH_API_URL is not an http(s) URL, then it is a usage error naming the variable', () => {
    expect(() => resolveApiUrl(undefined, { ORCH_API_URL: 'localhost:8000' })).toThrow(UsageError);
    expect(() => resolveApiUrl(undefined, { ORCH_API_URL: 'localhost:8000' })).toThrow(/ORCH_API_URL/);
  });

  it('prefers --api-key to ORCH_API_KEY; an empty key means none', () => {
    expect(resolveApiKey('flag', { ORCH_API_KEY: 'env' })).toBe('flag');
    expect(resolveApiKey(undefined, { ORCH_API_KEY: 'env' })).toBe('env');
    expect(resolveApiKey(undefined, { ORCH_API_KEY: '' })).toBeUndefined();
    expect(resolveApiKey(undefined, {})).toBeUndefined();
  });
});

describe('planChunks', () => {
  it('splits the count into chunks of the chunk size, the last one shorter', () => {
    expect(planChunks(250, 100, 20)).toEqual([100, 100, 50]);
    expect(planChunks(50, 100, 20)).toEqual([50]);
    expect(planChunks(1, 100, 20)).toEqual([1]);
  });

  it('makes chunks smaller when the request body would be over the limit', () => {
    const bytesPerJob = 100_000;
    const sizes = planChunks(25, 100, bytesPerJob);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(25);
    for (const size of sizes) expect(size * (bytesPerJob + 1) + 11).toBeLessThanOrEqual(MAX_REQUEST_BODY_BYTES);
  });

  it('sends a job bigger than the limit alone (the API then answers 413)', () => {
    expect(planChunks(2, 100, 2 * MAX_REQUEST_BODY_BYTES)).toEqual([1, 1]);
  });
});

describe('parseBoolean', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['yes', true],
    ['1', true],
    ['false', false],
    ['No', false],
    ['0', false],
  ])('reads %j as %j', (value, expected) => {
    expect(parseBoolean(value)).toBe(expected);
  });

  it.each(['', 'maybe', 'truee', ' true'])('rejects %j', (value) => {
    expect(() => parseBoolean(value)).toThrow(InvalidArgumentError);
  });
});
