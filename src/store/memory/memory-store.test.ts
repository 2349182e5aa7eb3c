import { eventStoreContract } from '../../testing/index.ts';
import { createMemoryStore } from './memory-store.ts';

eventStoreContract('the memory store', async () => ({ store: createMemoryStore() }), { persistent: false });
