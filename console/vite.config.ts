// Vite builds the console for /console/: content-hashed files under assets/, no inline script
// (the server's Content-Security-Policy allows none), Preact's automatic JSX runtime.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/console/',
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
