/**
 * `busbar/server`: the Busbar server — the HTTP API under `/v1`, Server-Sent
 * Events and WebSocket streaming, API keys, rate limits, stats, health and
 * Prometheus metrics — and the configuration the `busbar serve` command
 * reads from flags, `BUSBAR_*` variables and a config file.
 *
 * @module
 */
export { type BusbarServer, createServer, type Endpoint, type ServerOptions } from './server.ts';
export {
  type ConfigSources,
  DEFAULT_LIMITS,
  LOG_LEVELS,
  type LogLevel,
  resolveServerConfig,
  SERVER_OPTIONS,
  type ServerConfig,
  type ServerOptionSpec,
  serverOptionsHelp,
  serverParseArgsOptions,
} from './config.ts';
export { type ApiKey, Authenticator, checkApiKeys } from './auth.ts';
export type { Accepted, Principal, Right, RouteAccess, ServerContext, ServerLimits, ServerMeters } from './context.ts';
export { jsonSchemaValidator, type JsonSchema } from './json-schema.ts';
export { patternCovers } from './pattern-scope.ts';
export { TOPICS_STREAM, TOPICS_CHANGED, type TopicRegistration, type TopicView } from './topic-registry.ts';
export type { HealthReport, ComponentCheck } from './health.ts';
export type { ErrorReply } from './error-replies.ts';
export type { ServerCdcOptions } from './cdc-config.ts';
export type { CdcStatusView } from './cdc-capture.ts';
