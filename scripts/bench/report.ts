/** One row of the benchmark report: our figure per mode beside a reference, and the target if any. */
export interface Figure {
  scenario: string;
  unit: string;
  embedded?: number | number[] | undefined;
  local?: number | number[] | undefined;
  reference?: number | number[] | undefined;
  referenceName?: string;
  target?: { text: string; met: (figure: Figure) => boolean };
}

const format = (value: number | number[] | undefined): string => {
  if (value === undefined) return '—';
  if (Array.isArray(value)) return value.map((v) => format(v)).join(' / ');
  if (!Number.isFinite(value)) return String(value);
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
};

/** Ours ÷ reference for throughput; reference ÷ ours for times (so > 1 always means we are ahead). */
function ratio(figure: Figure): string {
  const ours = figure.local ?? figure.embedded;
  const reference = figure.reference;
  if (typeof ours !== 'number' || typeof reference !== 'number' || figure.referenceName === 'bare fastify') {
    if (Array.isArray(ours) && Array.isArray(reference) && figure.unit === 'ms' && figure.referenceName === 'BullMQ') {
      const last = (v: number[]) => v[v.length - 1] ?? NaN;
      return `${(last(reference) / last(ours)).toFixed(2)}× (p99)`;
    }
    if (typeof ours === 'number' && typeof reference === 'number') return `${((100 * ours) / reference).toFixed(0)}%`;
    return '';
  }
  const value = figure.unit === 'ms' || figure.unit === 'MB' ? reference / ours : ours / reference;
  return `${value.toFixed(2)}×`;
}

const target = (figure: Figure): string =>
  figure.target ? `${figure.target.met(figure) ? '✅' : '❌'} ${figure.target.text}` : '';

function rows(figures: readonly Figure[]): string[][] {
  return [
    ['scenario', 'unit', 'embedded', 'local', 'reference', 'ours vs reference', 'target'],
    ...figures.map((f) => [
      f.scenario,
      f.unit,
      format(f.embedded),
      format(f.local),
      f.reference === undefined ? '' : `${format(f.reference)} (${f.referenceName ?? ''})`,
      ratio(f),
      target(f),
    ]),
  ];
}

export function formatTable(figures: readonly Figure[]): string {
  const table = rows(figures);
  const widths = table[0]?.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length))) ?? [];
  return table.map((row) => row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ')).join('\n');
}

export function formatMarkdown(
  figures: readonly Figure[],
  machine: Record<string, string>,
  options: Record<string, unknown>,
): string {
  const [header = [], ...body] = rows(figures);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    '# Benchmark',
    '',
    `Machine: ${Object.values(machine).join(', ')}.`,
    `Options: \`${JSON.stringify(options)}\`.`,
    '',
    line(header),
    line(header.map(() => '---')),
    ...body.map(line),
    '',
  ].join('\n');
}
