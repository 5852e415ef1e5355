// The ES module entry point (`import { NexaDB } from 'nexadb'`): the CommonJS build re-exported,
// so `import` and `require()` share one copy of every class (instanceof holds across both).
export * from './index.js';
