// Vite builds the console for /console/: content-hashed files under assets/, no inline script
// (the server's Content-Security-Policy allows none), Preact's automatic JSX runtime.
import { defineConfig } from 'vitest/config';

declare const process: { env: Record<string, string | undefined> }; // (no @types/node for one line)

// `npm run dev` serves the console with hot reload and passes the API to a running server.
const target = process.env.NEXADB_URL ?? 'http://127.0.0.1:6969';
const api = ['/collections', '/vector', '/status', '/stats', '/metrics', '/admin'];

export default defineConfig({
  base: '/console/',
  server: { proxy: Object.fromEntries(api.map((p) => [p, { target, changeOrigin: true }])) },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2020',
    outDir: 'dist',
    assetsInlineLimit: 0, // no data: URLs (the CSP's img-src is 'self')
    modulePreload: { polyfill: false }, // the polyfill would be an inline script
    reportCompressedSize: false,
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
