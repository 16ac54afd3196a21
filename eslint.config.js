import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'coverage/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@orch/*/src/*'], message: 'Import a package through its exports.' }] },
      ],
    },
  },
  {
    files: ['services/core/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@azure/*', 'amqplib', 'fastify', 'pg', '@electric-sql/*'], message: 'core has no I/O.' },
            {
              group: ['node:fs', 'node:fs/*', 'node:net', 'node:http', 'node:child_process'],
              message: 'core has no I/O.',
            },
            { group: ['@orch/*'], message: 'core depends on nothing of ours.' },
          ],
        },
      ],
    },
  },
  {
    files: ['services/{api,scheduler,workers,batch-submitter}/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@orch/*/src/*'], message: 'Import a package through its exports.' },
            {
              group: ['@orch/api', '@orch/scheduler', '@orch/workers', '@orch/batch-submitter', '@orch/embedded'],
              message: 'Services never import each other.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The dashboard's script runs in the browser (a classic script, uPlot loaded before it).
    files: ['services/api/src/dashboard/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'location',
          'history',
          'localStorage',
          'fetch',
          'setInterval',
          'FormData',
          'URLSearchParams',
          'ResizeObserver',
          'uPlot',
          'console',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);
