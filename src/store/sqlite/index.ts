export { createSqliteStore, SqliteStore, type SqliteStoreOptions, type SqliteTransaction } from './sqlite-store.ts';
