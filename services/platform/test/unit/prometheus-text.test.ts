import { describe, expect, it } from 'vitest';
import { parsePrometheusText } from '@orch/platform/testing';

describe('parsePrometheusText', () => {
  it('given valid exposition, when parsed, then it returns every sample with labels and values', () => {
    const text = [
      '# HELP orch_x_total Help text.',
      '# TYPE orch_x_total counter',
      'orch_x_total{queue="a",note="say \\"hi\\""} 3',
      'orch_up 1 1700000000000',
      'orch_h_bucket{le="+Inf"} +Inf',
      '',
    ].join('\n');

    expect(parsePrometheusText(text)).toStrictEqual([
      { name: 'orch_x_total', labels: { queue: 'a', note: 'say "hi"' }, value: 3 },
      { name: 'orch_up', labels: {}, value: 1 },
      { name: 'orch_h_bucket', labels: { le: '+Inf' }, value: Infinity },
    ]);
  });

  it('given NaN and infinities in any letter case (as prom-client writes them), then they parse', () => {
    const values = parsePrometheusText('a Nan\nb -inf\nc +Infinity\nd 1.5e-3').map((s) => s.value);
    expect(values).toStrictEqual([NaN, -Infinity, Infinity, 0.0015]);
  });

  it.each([
    ['a bad value', 'orch_x 1x'],
    ['unquoted labels', 'orch_x{queue=a} 1'],
    ['an unknown type', '# TYPE orch_x countr'],
    ['a bad name', '9orch 1'],
  ])('given %s, when parsed, then it throws naming the line', (_, line) => {
    expect(() => parsePrometheusText(line)).toThrow(/line 1/);
  });
});
