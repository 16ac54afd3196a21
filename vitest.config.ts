import { defineConfig } from 'vitest/config';

/**
 * Three projects, run one after the other (`sequence.groupOrder`): fast unit tests; integration
 * tests against real servers (RabbitMQ, PostgreSQL, Azurite, the Service Bus and Batch test
 * servers); end-to-end tests of whole systems as processes, one file at a time because the local
 * mode drill restarts the shared RabbitMQ broker.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['services/*/test/unit/**/*.test.ts', 'infra/test/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['services/*/test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['services/*/test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 90_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
