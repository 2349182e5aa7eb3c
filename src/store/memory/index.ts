export { createMemoryStore, MemoryStore, type MemoryTransaction } from './memory-store.ts';
