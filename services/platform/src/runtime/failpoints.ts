import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Crash points for fault drills: a named place in the code where a test can make the process die
 * as abruptly as a SIGKILL or a node failure would, at exactly the moment that matters (e.g. after
 * the scheduler records a decision and before it publishes). Disarmed — the default, and always in
 * production — a failpoint is one Map lookup.
 *
 * Armed by the environment:
 *   ORCH_FAILPOINTS=scheduler.after-decision:5   the 5th pass through that point kills the process
 *   ORCH_FAILPOINTS_ONCE_DIR=/tmp/drill          fire each failpoint once across restarts (a marker
 *                                                file per fired failpoint), so a supervised process
 *                                                that is restarted does not crash again
 */
const armed = parse(process.env.ORCH_FAILPOINTS ?? '');
const passes = new Map<string, number>();

function parse(spec: string): Map<string, number> {
  const points = new Map<string, number>();
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [name = '', count = '1'] = item.split(':');
    const n = Number(count);
    if (name === '' || !Number.isInteger(n) || n < 1)
      throw new Error(`ORCH_FAILPOINTS: bad entry ${JSON.stringify(item)}`);
    points.set(name, n);
  }
  return points;
}

/** Kills the process here if the failpoint `name` is armed and this is its fatal pass. */
export function failpoint(name: string): void {
  const at = armed.get(name);
  if (at === undefined) return;
  const pass = (passes.get(name) ?? 0) + 1;
  passes.set(name, pass);
  if (pass !== at) return;
  const onceDir = process.env.ORCH_FAILPOINTS_ONCE_DIR;
  if (onceDir) {
    const marker = path.join(onceDir, `${name}.fired`);
    if (existsSync(marker)) return;
    writeFileSync(marker, `${process.pid}\n`);
  }
  process.stderr.write(`failpoint ${name} fired on pass ${pass}: killing pid ${process.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}
