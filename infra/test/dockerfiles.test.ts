import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The Dockerfiles (dockerfiles/), read without a Docker engine: the base image is pinned, the
 * process is not root, nothing secret goes in, and the entrypoint is in the image together with
 * everything it imports: each source file through the COPY instructions and .dockerignore, each
 * package as a production dependency `npm ci` installs.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP_DIR = '/app';

interface Image {
  dockerfile: string;
  /** Files the container runs with `node`, relative to the repository (and to /app in the image). */
  entrypoints: string[];
}

const IMAGES: readonly Image[] = [
  { dockerfile: 'Dockerfile.api', entrypoints: ['services/api/src/main.ts'] },
  { dockerfile: 'Dockerfile.scheduler', entrypoints: ['services/scheduler/src/main.ts'] },
  // Azure Batch tasks run `node /app/services/workers/src/task-runner.ts` in the worker image.
  {
    dockerfile: 'Dockerfile.worker',
    entrypoints: ['services/workers/src/main.ts', 'services/workers/src/task-runner.ts'],
  },
  // In local mode the batch submitter runs the task runner as child processes.
  {
    dockerfile: 'Dockerfile.batch-submitter',
    entrypoints: ['services/batch-submitter/src/main.ts', 'services/workers/src/task-runner.ts'],
  },
];

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments dropped, ARGs of FROM lines resolved. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const instructions = lines
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line): Instruction => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args
        .replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => globalArgs.get(a ?? b ?? '') ?? '')
        .split(/\s+/);
      stages.push({ image, ...(as?.toUpperCase() === 'AS' && name !== undefined && { name }), instructions: [] });
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [key = '', value = ''] = instruction.args.split('=');
      globalArgs.set(key, value);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

const readDockerfile = (name: string) => parseDockerfile(readFileSync(join(ROOT, 'dockerfiles', name), 'utf8'));
const finalStageOf = (stages: Stage[]) => stages.at(-1) as Stage;
const argsOf = (stage: Stage, keyword: string) =>
  stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

/** COPY instructions from the build context: [sources, destination] (paths relative to /app). */
function contextCopies(stages: Stage[]): { sources: string[]; destination: string }[] {
  return stages.flatMap((stage) =>
    argsOf(stage, 'COPY')
      .filter((args) => !args.startsWith('--from'))
      .map((args) => {
        const parts = args.split(/\s+/).filter((p) => !p.startsWith('--'));
        return { sources: parts.slice(0, -1), destination: parts.at(-1) ?? '' };
      }),
  );
}

/** .dockerignore with Docker's semantics: the last matching pattern wins; a match on a folder covers its content. */
function createDockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(.*/)?');
      return { negated, regex: new RegExp(`^${source}$`) };
    });
  return (path) => {
    const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) {
      if (prefixes.some((prefix) => rule.regex.test(prefix))) excluded = !rule.negated;
    }
    return excluded;
  };
}

const isExcluded = createDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));

interface Workspace {
  dir: string;
  name: string;
  dependencies: Record<string, string>;
  exports: Record<string, string>;
}

const workspaces: Workspace[] = ['services', 'infra']
  .flatMap((top) => (top === 'infra' ? ['infra'] : readdirSync(join(ROOT, top)).map((d) => posix.join(top, d))))
  .filter((dir) => existsSync(join(ROOT, dir, 'package.json')))
  .map((dir) => {
    const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      exports?: Record<string, string>;
    };
    return { dir, name: manifest.name, dependencies: manifest.dependencies ?? {}, exports: manifest.exports ?? {} };
  });

const workspaceOf = (file: string): Workspace | undefined => workspaces.find((w) => file.startsWith(`${w.dir}/`));

/** Module specifiers a file loads at run time (type-only imports are erased). */
function importsOf(source: string): string[] {
  const statics = [...source.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/gm)]
    .filter((m) => m[1] === undefined)
    .map((m) => m[2] ?? '');
  const dynamics = [...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? '');
  return [...statics, ...dynamics];
}

const packageNameOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

/** The workspaces `npm ci --workspace …` installs: the named ones and the workspaces they depend on. */
function installedWorkspaces(stages: Stage[]): Set<string> {
  const named = stages
    .flatMap((s) => argsOf(s, 'RUN'))
    .flatMap((args) => [...args.matchAll(/--workspace[= ]+(\S+)/g)].map((m) => m[1] ?? ''));
  const installed = new Set<string>();
  const visit = (dir: string) => {
    if (installed.has(dir)) return;
    installed.add(dir);
    const workspace = workspaces.find((w) => w.dir === dir);
    for (const dependency of Object.keys(workspace?.dependencies ?? {})) {
      const linked = workspaces.find((w) => w.name === dependency);
      if (linked) visit(linked.dir);
    }
  };
  named.forEach(visit);
  return installed;
}

/**
 * Follows the imports from `entrypoints` and returns the problems: files the image lacks, packages
 * not declared as production dependencies of the importing workspace, workspaces npm ci skips.
 */
function missingFromImage(stages: Stage[], entrypoints: string[]): string[] {
  const copies = contextCopies(stages);
  const installed = installedWorkspaces(stages);
  // Where a context file lands under /app; the image mirrors the repository's layout.
  const landing = (file: string): string | undefined => {
    for (const { sources, destination } of copies) {
      for (const source of sources) {
        const into = posix.normalize(destination).replace(/^\.\/?$/, '');
        if (file === source) return destination.endsWith('/') ? posix.join(into, posix.basename(file)) : into;
        if (file.startsWith(`${source}/`)) return posix.join(into, file.slice(source.length + 1));
      }
    }
    return undefined;
  };
  const inImage = (file: string) => !isExcluded(file) && landing(file) === file;
  const problems: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string, from: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!existsSync(join(ROOT, file)) || !statSync(join(ROOT, file)).isFile()) {
      problems.push(`${file} (imported by ${from}) does not exist`);
      return;
    }
    if (!inImage(file)) problems.push(`${file} (imported by ${from}) is not copied into the image`);
    const workspace = workspaceOf(file);
    if (workspace === undefined || !installed.has(workspace.dir)) {
      problems.push(`${file} belongs to a workspace npm ci does not install`);
      return;
    }
    for (const specifier of importsOf(readFileSync(join(ROOT, file), 'utf8'))) {
      const packageName = packageNameOf(specifier);
      if (specifier.startsWith('.')) {
        visit(posix.normalize(posix.join(posix.dirname(file), specifier)), file);
      } else if (specifier.startsWith('node:') || builtinModules.includes(specifier)) {
        continue;
      } else if (workspace.dependencies[packageName] === undefined) {
        problems.push(`${file} imports ${specifier}, not a production dependency of ${workspace.name}`);
      } else {
        const linked = workspaces.find((w) => w.name === packageName);
        if (linked === undefined) continue;
        const target = linked.exports[`.${specifier.slice(packageName.length)}`];
        if (target === undefined) problems.push(`${file} imports ${specifier}, which ${linked.name} does not export`);
        else visit(posix.join(linked.dir, target), file);
      }
    }
  };
  for (const entrypoint of entrypoints) visit(entrypoint, 'CMD');
  return problems;
}

const nodeEngine = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } })
  .engines.node;

describe.each(IMAGES)('dockerfiles/$dockerfile', ({ dockerfile, entrypoints }) => {
  const stages = readDockerfile(dockerfile);
  const final = finalStageOf(stages);

  it('builds on a pinned Node 24 slim image, the same in every Dockerfile and every stage', () => {
    const bases = stages.map((s) => s.image).filter((image) => !stages.some((s) => s.name === image));
    expect(bases.length).toBeGreaterThan(0);
    for (const image of bases) {
      expect(image).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/);
      expect(image).toBe(finalStageOf(readDockerfile('Dockerfile.api')).image);
    }
    expect(nodeEngine).toMatch(/^>=24 <25$/);
  });

  it('runs as a non-root user, numeric so Kubernetes can verify runAsNonRoot', () => {
    const user = argsOf(final, 'USER').at(-1) ?? 'root';
    const [uid = ''] = user.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
  });

  it('starts node on an entrypoint file that exists, with CMD (a Batch task command replaces it)', () => {
    expect(argsOf(final, 'ENTRYPOINT')).toStrictEqual([]);
    const cmd = JSON.parse(argsOf(final, 'CMD').at(-1) ?? '[]') as string[];
    expect(cmd).toStrictEqual(['node', entrypoints[0]]);
    expect(argsOf(final, 'WORKDIR').at(-1)).toBe(APP_DIR);
    for (const file of entrypoints) expect(existsSync(join(ROOT, file)), file).toBe(true);
  });

  it('contains the entrypoints and everything they import, installing production dependencies only', () => {
    const installs = stages.flatMap((s) => argsOf(s, 'RUN')).filter((args) => args.includes('npm '));
    expect(installs).toHaveLength(1);
    expect(installs[0]).toMatch(/^npm ci .*--omit=dev/);
    expect(missingFromImage(stages, entrypoints)).toStrictEqual([]);
    // The build stage's result, at the same place.
    expect(argsOf(final, 'COPY')).toStrictEqual([`--from=${stages[0]?.name ?? ''} ${APP_DIR} ${APP_DIR}`]);
    expect(argsOf(stages[0] as Stage, 'WORKDIR')).toStrictEqual([APP_DIR]);
    // Read at run time, not imported: the job store's migrations.
    expect(isExcluded('services/platform/src/postgres/migrations/001.do.create-jobs.sql')).toBe(false);
  });

  it('puts no secrets in the image: no secret-looking ARG or ENV, no .env copied', () => {
    const declared = stages.flatMap((s) => [...argsOf(s, 'ARG'), ...argsOf(s, 'ENV')]).join(' ');
    expect(declared).not.toMatch(/SECRET|PASSWORD|TOKEN|KEY|CONNECTION_STRING/i);
    const sources = contextCopies(stages).flatMap((c) => c.sources);
    expect(sources.filter((s) => s.includes('.env'))).toStrictEqual([]);
  });
});

describe('dockerfiles/Dockerfile.worker', () => {
  it('picks the pool with the WORKER_POOL build argument (actor by default) and refuses any other', () => {
    const final = finalStageOf(readDockerfile('Dockerfile.worker'));
    expect(argsOf(final, 'ARG')).toContain('WORKER_POOL=actor');
    expect(argsOf(final, 'ENV').join(' ')).toMatch(/WORKER_POOL=\$\{WORKER_POOL\}/);
    expect(argsOf(final, 'RUN').join(' ')).toMatch(/actor \| spark\)/);
  });
});

describe('.dockerignore', () => {
  it('keeps secrets, dependencies, VCS data and tests out of the build context', () => {
    for (const path of ['.env', '.env.production', '.git/config', 'node_modules/x', 'services/api/node_modules/x']) {
      expect(isExcluded(path), path).toBe(true);
    }
    for (const path of ['services/api/test/unit/app.test.ts', '.data/pg/x', 'cdktf.out/stacks/x', 'infra/src/x.ts']) {
      expect(isExcluded(path), path).toBe(true);
    }
  });

  it('keeps every file the Dockerfiles copy', () => {
    for (const { dockerfile } of IMAGES) {
      for (const source of contextCopies(readDockerfile(dockerfile)).flatMap((c) => c.sources)) {
        expect(existsSync(join(ROOT, source)), `${dockerfile}: ${source}`).toBe(true);
        expect(isExcluded(source), `${dockerfile}: ${source}`).toBe(false);
      }
    }
  });

  it('has no trailing slashes, which `az acr build` (its own matcher) would not strip', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(lines.filter((l) => !l.startsWith('#') && l.trim().endsWith('/'))).toStrictEqual([]);
  });
});
