/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startSystem, type RunningSystem } from '@orch/platform/testing';
import { generateApiKey } from '../../src/index.ts';

/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against the
 * embedded system run as a process, with an API key as in production: after jobs are submitted the
 * charts have data, the table lists the jobs, a job opens with its timeline and result, and the page
 * logs no errors. A screenshot is kept in test-artifacts/.
 */
const CHROMIUM = '/usr/bin/chromium';
const EMBEDDED = path.resolve(import.meta.dirname, '../../../embedded/src/main.ts');
const ARTIFACTS = path.resolve(import.meta.dirname, '../../../../test-artifacts');

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI !== 'true') {
  console.warn(`dashboard browser test skipped: no ${CHROMIUM} (bash scripts/ensure-tools.sh installs it)`);
}

const admin = generateApiKey('ops', true);
let system: RunningSystem;
let browser: Browser;
let dataDir: string;

beforeAll(async () => {
  if (!haveChromium && process.env.CI !== 'true') return;
  dataDir = await mkdtemp(path.join(tmpdir(), 'orch-dashboard-'));
  system = await startSystem(EMBEDDED, {
    DATA_DIR: dataDir,
    API_KEYS: admin.entry,
    SIMULATED_DURATION_FACTOR: '0.02',
    BATCH_LINGER_MS: '50',
    BATCH_POLL_INTERVAL_MS: '200',
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await system?.killAll();
  if (dataDir) await removeDir(dataDir);
});

interface DashboardState {
  samples: { succeeded_per_sec: number; queues: Record<string, { active: number }> }[];
  jobs: { job_id: string }[];
}

describe.skipIf(!haveChromium && process.env.CI !== 'true')('dashboard in headless Chromium', () => {
  it('shows live charts, lists the jobs, opens a job with its timeline and result, and logs no errors', async () => {
    const submitted = await fetch(`${system.url}/jobs/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.key}` },
      body: JSON.stringify({
        jobs: Array.from({ length: 40 }, (_, i) => ({
          rows: 1_000 + i,
          estimated_runtime_sec: [5, 110, 45, 2][i % 4],
          latency_sensitive: i % 4 === 0,
        })),
      }),
    });
    expect(submitted.status).toBe(202);
    const ids = ((await submitted.json()) as { job_ids: string[] }).job_ids;

    const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    const problems: string[] = [];
    // The one request this test makes fail (below) is logged by Chromium itself; anything else is a problem.
    const failing: { url?: string } = {};
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const expected =
        failing.url !== undefined &&
        message.text().startsWith('Failed to load resource') &&
        message.location().url === failing.url;
      if (!expected) problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page: ${error.message}`));

    // The key travels in the fragment, which the browser never sends to the server.
    await page.goto(`${system.url}/#key=${encodeURIComponent(admin.key)}`);
    expect(new URL(page.url()).hash).toBe('');

    // Charts: samples keep arriving, and they saw the jobs being processed.
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { __dashboard: DashboardState }).__dashboard.samples;
        return s.length >= 3 && s.some((x) => x.succeeded_per_sec > 0);
      },
      undefined,
      { timeout: 60_000 },
    );
    expect(await page.locator('.uplot canvas').count()).toBeGreaterThanOrEqual(8);
    await expect
      .poll(() => page.locator('[data-workers="actor-jobs"]').textContent(), { timeout: 10_000 })
      .toMatch(/\d+ workers?, \d+\/\d+ slots busy/);

    // The table lists the submitted jobs (newest first, all 40 within the first page of 50).
    await page.waitForFunction((n) => document.querySelectorAll('#jobs-table tbody tr').length >= n, ids.length, {
      timeout: 30_000,
    });
    const listed = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('#jobs-table tbody tr')].map((tr) => tr.dataset.jobId),
    );
    expect(listed).toEqual(expect.arrayContaining(ids));

    // A filter narrows the table: to rows (not none), every one of them an actor job, all of ours there.
    const actorIds = ids.filter((_, i) => i % 4 === 0);
    await page.selectOption('select[name="queue"]', 'actor-jobs');
    await page.waitForFunction(
      (expected) => {
        const rows = [...document.querySelectorAll<HTMLElement>('#jobs-table tbody tr')];
        return (
          rows.length >= expected.length &&
          rows.every((tr) => tr.querySelector('td:nth-child(3)')?.textContent === 'actor-jobs') &&
          expected.every((id) => rows.some((tr) => tr.dataset.jobId === id))
        );
      },
      actorIds,
      { timeout: 30_000 },
    );
    const filtered = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('#jobs-table tbody tr')].map((tr) => ({
        id: tr.dataset.jobId,
        queue: tr.querySelector('td:nth-child(3)')?.textContent,
      })),
    );
    expect(filtered.length).toBeGreaterThanOrEqual(actorIds.length);
    expect(filtered.every((row) => row.queue === 'actor-jobs')).toBe(true);
    expect(filtered.map((row) => row.id)).toEqual(expect.arrayContaining(actorIds));
    await page.selectOption('select[name="queue"]', '');

    // A job view: wait for the job to succeed, open it, see its timeline and its result.
    const id = ids[0]!;
    await expect
      .poll(
        async () =>
          (
            (await (
              await fetch(`${system.url}/jobs/${id}`, { headers: { authorization: `Bearer ${admin.key}` } })
            ).json()) as {
              status: string;
            }
          ).status,
        { timeout: 60_000 },
      )
      .toBe('succeeded');
    await page.locator(`#jobs-table tbody tr[data-job-id="${id}"]`).click();
    await page.waitForSelector('#job-view:not([hidden])');
    expect(await page.locator('#job-id').textContent()).toBe(id);
    const timeline = await page.locator('#job-timeline li .step').allTextContents();
    expect(timeline).toEqual(['submitted', 'queued', 'running', 'succeeded']);
    await page.locator('#job-result-button').click();
    await page.waitForSelector('#job-result:not([hidden])');
    expect(JSON.parse((await page.locator('#job-result').textContent()) ?? '')).toMatchObject({ count: 1_000 });

    // The download link fetches the result with the key (a plain link would be a 401).
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#job-result-link').click()]);
    expect(download.suggestedFilename()).toBe(`${id}.json`);
    const saved = await download.path();
    expect(JSON.parse(await readFile(saved, 'utf8'))).toMatchObject({ count: 1_000 });

    // A job that cannot be loaded says so in the page, instead of an unhandled rejection.
    const broken = ids[1]!;
    failing.url = `${system.url}/jobs/${broken}`;
    await page.route(failing.url, (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ code: 'DEPENDENCY_UNAVAILABLE', message: 'try again later' }),
      }),
    );
    await page.locator(`#jobs-table tbody tr[data-job-id="${broken}"]`).click();
    await page.waitForSelector('#job-problem:not([hidden])');
    expect(await page.locator('#job-problem').textContent()).toContain('503 DEPENDENCY_UNAVAILABLE try again later');
    await page.unroute(failing.url);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('without a key, asks for one instead of showing data', async () => {
    const page = await browser.newPage();
    await page.goto(system.url);
    await page.waitForSelector('#key-form:not([hidden])', { timeout: 10_000 });
    expect(await page.locator('#status').textContent()).toContain('needs a key');
    await page.close();
  });
});
