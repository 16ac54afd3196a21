import { describe, expect, it } from 'vitest';
import { createMemoryTransport } from '@orch/platform/memory';
import { INGEST_LANES, PHYSICAL_QUEUES, dispatchJobs, ingestLaneOf } from '@orch/core';
import { makeJob } from '@orch/platform/testing';

describe('ingest lanes', () => {
  it('given submissions of every priority, then urgent and high take jobqueue-high and the rest jobqueue', async () => {
    const transport = createMemoryTransport();
    const jobs = (['low', 'normal', 'high', 'urgent'] as const).map((priority) => makeJob({ priority }));

    await dispatchJobs(transport, jobs, new Date());

    expect((await transport.getQueueDepth('jobqueue-high')).active).toBe(2);
    expect((await transport.getQueueDepth('jobqueue')).active).toBe(2);
    expect(ingestLaneOf('urgent')).toBe('jobqueue-high');
    expect(INGEST_LANES.map((l) => l.queue)).toStrictEqual(['jobqueue-high', 'jobqueue']);
    expect(PHYSICAL_QUEUES).toEqual(expect.arrayContaining(['jobqueue-high', 'jobqueue']));
    await transport.close();
  });
});
