/**
 * `busbar/cdc`: change data capture from PostgreSQL into a Busbar bus. Needs
 * the optional peer dependency `pg` (`npm i pg`): without it, importing this
 * entry fails with `BUSBAR_ERR_MISSING_DRIVER`. See `docs/cdc.md`.
 *
 * @module
 */
import { loadPgDriver } from './pg-driver.ts';

export { createPostgresCdc, type PostgresCdc } from './postgres-cdc.ts';
export type { CdcStatus, PostgresCdcOptions } from './cdc-options.ts';
export { type CdcBus, type CdcHandler, type ChangeSinkOptions, createChangeSink } from './change-sink.ts';
export {
  type CapturedTransaction,
  type ChangeAction,
  type ChangeData,
  type ChangeOrigin,
  changeEvent,
  type ColumnChange,
  type Row,
  subjectOf,
} from './change.ts';
export type { CaptureSource, ChangeSink, SourceHealth, TableName, TableSpec } from './capture-source.ts';
export { changeTopic, nameOfToken, topicToken } from './topic-name.ts';
export { createReplicationSource, type ReplicationSourceOptions } from './replication/replication-source.ts';
export { createTriggerSource, type TriggerSourceOptions } from './trigger/index.ts';
export {
  createRedisBridge,
  type RedisBridge,
  type RedisBridgeOptions,
  type RedisChangeMessage,
  type RedisPublisher,
} from './redis-bridge.ts';
export { formatLsn, type Lsn, parseLsn } from './replication/lsn.ts';
export { tableKey } from './table-spec.ts';
export type { SnapshotState, TableSnapshotStatus } from './snapshot/snapshot-progress.ts';

// Loaded when this entry is imported, so a missing driver fails at the
// import, naming what to install, and not when capture starts.
await loadPgDriver();
