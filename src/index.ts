/**
 * Busbar: an event bus for TypeScript. This entry is the core: the bus,
 * events, patterns, results and errors. Stores, CDC, transports and the
 * server live under their own subpaths (`busbar/store/sqlite`, …).
 *
 * @module
 */
export * from './core/index.ts';
