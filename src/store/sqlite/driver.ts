import type * as NodeSqlite from 'node:sqlite';
import { BusbarError } from '../../core/errors.ts';

/**
 * `node:sqlite`, loaded when `busbar/store/sqlite` is imported. Loaded
 * dynamically so that a Node without it (or with an older one: the store
 * reads rows as arrays, which came with Node 24) fails with an error that
 * says so, not with an unknown-module error from deep in the import graph.
 */
export const sqlite: typeof NodeSqlite = await loadSqlite();

async function loadSqlite(): Promise<typeof NodeSqlite> {
  const needs = `busbar/store/sqlite needs node:sqlite as in Node 24 or later; this is Node ${process.versions.node}`;
  let module: typeof NodeSqlite;
  try {
    module = await import('node:sqlite');
  } catch (error) {
    throw new BusbarError('BUSBAR_ERR_MISSING_DRIVER', needs, { cause: error, details: { node: process.versions.node } });
  }
  if (typeof module.StatementSync.prototype.setReturnArrays !== 'function') {
    throw new BusbarError('BUSBAR_ERR_MISSING_DRIVER', needs, { details: { node: process.versions.node } });
  }
  return module;
}
