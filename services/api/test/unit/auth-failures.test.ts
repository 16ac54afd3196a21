import { describe, expect, it } from 'vitest';
import { clientKeyOf, createAuthFailureLimiter } from '../../src/auth-failures.ts';

function createClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let at = start;
  return { now: () => at, advance: (ms) => (at += ms) };
}

describe('createAuthFailureLimiter', () => {
  it('given an address that failed maxFailures times, then it is refused until its window ends', () => {
    const clock = createClock();
    const limiter = createAuthFailureLimiter({ maxFailures: 3, windowInMs: 60_000, now: clock.now });

    expect(limiter.recordFailure('10.0.0.1')).toBe(false);
    clock.advance(10_000);
    expect(limiter.recordFailure('10.0.0.1')).toBe(false);
    expect(limiter.blockedFor('10.0.0.1')).toBeUndefined();
    // The third failure reaches the limit, and says so once.
    expect(limiter.recordFailure('10.0.0.1')).toBe(true);
    expect(limiter.blockedFor('10.0.0.1')).toBe(50_000);
    expect(limiter.recordFailure('10.0.0.1')).toBe(false);
    expect(limiter.blockedFor('10.0.0.2')).toBeUndefined();

    clock.advance(49_999);
    expect(limiter.blockedFor('10.0.0.1')).toBe(1);
    clock.advance(1);
    expect(limiter.blockedFor('10.0.0.1')).toBeUndefined();
    expect(limiter.size).toBe(0);
    // A new window starts with the next failure.
    expect(limiter.recordFailure('10.0.0.1')).toBe(false);
    expect(limiter.blockedFor('10.0.0.1')).toBeUndefined();
  });

  it('given failures spread over more than one window, then they do not add up', () => {
    const clock = createClock();
    const limiter = createAuthFailureLimiter({ maxFailures: 2, windowInMs: 1_000, now: clock.now });
    for (let i = 0; i < 10; i++) {
      limiter.recordFailure('10.0.0.1');
      clock.advance(1_000);
    }
    expect(limiter.blockedFor('10.0.0.1')).toBeUndefined();
  });

  it('given more failing addresses than maxClients, then it remembers only the most recent ones', () => {
    const clock = createClock();
    const limiter = createAuthFailureLimiter({ maxFailures: 1, windowInMs: 60_000, maxClients: 100, now: clock.now });
    limiter.recordFailure('192.0.2.1');
    for (let i = 0; i < 10_000; i++) {
      limiter.recordFailure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      expect(limiter.size).toBeLessThanOrEqual(100);
    }
    expect(limiter.size).toBe(100);
    // The oldest is forgotten, the latest still refused.
    expect(limiter.blockedFor('192.0.2.1')).toBeUndefined();
    expect(limiter.blockedFor('10.0.39.15')).toBe(60_000);
  });

  it('given an address that fails again, then it is the last to be forgotten', () => {
    const limiter = createAuthFailureLimiter({ maxFailures: 1, windowInMs: 60_000, maxClients: 2 });
    limiter.recordFailure('10.0.0.1');
    limiter.recordFailure('10.0.0.2');
    limiter.recordFailure('10.0.0.1');
    limiter.recordFailure('10.0.0.3');
    expect(limiter.blockedFor('10.0.0.1')).toBeGreaterThan(0);
    expect(limiter.blockedFor('10.0.0.2')).toBeUndefined();
    expect(limiter.blockedFor('10.0.0.3')).toBeGreaterThan(0);
  });

  it('rejects settings that would limit nothing or everything', () => {
    expect(() => createAuthFailureLimiter({ maxFailures: 0, windowInMs: 1_000 })).toThrow(/maxFailures/);
    expect(() => createAuthFailureLimiter({ maxFailures: 1, windowInMs: 1.5 })).toThrow(/windowInMs/);
    expect(() => createAuthFailureLimiter({ maxFailures: 1, windowInMs: 1_000, maxClients: 0 })).toThrow(/maxClients/);
  });
});

describe('clientKeyOf', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['1::2:3:4:5:6:7', '1:0:2:3::/64'],
    ['2001:db8:1:2:3:4:192.0.2.1', '2001:db8:1:2::/64'],
    ['not an address', 'not an address'],
  ])('counts %s as %s', (address, key) => {
    expect(clientKeyOf(address)).toBe(key);
  });

  it('given two addresses of one IPv6 /64, then they share one count', () => {
    const limiter = createAuthFailureLimiter({ maxFailures: 2, windowInMs: 60_000 });
    limiter.recordFailure('2001:db8:1:2::1');
    limiter.recordFailure('2001:db8:1:2::ffff');
    expect(limiter.blockedFor('2001:db8:1:2:dead:beef:0:1')).toBeGreaterThan(0);
    expect(limiter.blockedFor('2001:db8:1:3::1')).toBeUndefined();
  });
});
