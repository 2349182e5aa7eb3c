// JSON Schemas shared by the routes: they validate requests and, through
// @fastify/swagger, make up the OpenAPI document at /v1/openapi.json.

export const errorReply = {
  type: 'object',
  description: 'Every failure: a stable code (see docs/errors.md), a message, sometimes details.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', example: 'BUSBAR_ERR_INVALID_TOPIC' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const;

/** The error replies a route can give, by status. */
export function errors(...statuses: number[]): Record<number, typeof errorReply> {
  return Object.fromEntries(statuses.map((status) => [status, errorReply]));
}

export const cloudEvent = {
  type: 'object',
  description: 'A CloudEvents 1.0 event in structured JSON; `type` is the topic, `sequence` its log position.',
  required: ['specversion', 'id', 'source', 'type'],
  additionalProperties: true,
  properties: {
    specversion: { type: 'string', enum: ['1.0'] },
    id: { type: 'string' },
    source: { type: 'string' },
    type: { type: 'string', description: 'The topic: dot-separated [A-Za-z0-9_-]+ tokens.', example: 'order.created' },
    time: { type: 'string', description: 'RFC 3339.' },
    subject: { type: 'string' },
    datacontenttype: { type: 'string' },
    dataschema: { type: 'string' },
    data: { description: 'The payload.' },
    data_base64: { type: 'string', description: 'Binary data, base64.' },
    partitionkey: { type: 'string', description: 'Ordering key.' },
    sequence: { type: 'integer', description: 'Log position (set by the server).' },
  },
} as const;

/** An event as a publisher sends it: a CloudEvent, or the plain form without `specversion`. */
export const publishedEvent = {
  type: 'object',
  description: 'The plain form: `type` and `data`, optionally any CloudEvents attribute; `id` and `source` are filled in.',
  required: ['type'],
  additionalProperties: true,
  properties: {
    type: { type: 'string', example: 'order.created' },
    data: { description: 'The payload.' },
    id: { type: 'string', description: 'Give one to make retries idempotent.' },
    source: { type: 'string' },
    subject: { type: 'string' },
    partitionkey: { type: 'string' },
  },
} as const;

export const accepted = {
  type: 'object',
  required: ['id', 'position'],
  properties: { id: { type: 'string' }, position: { type: 'integer', description: 'Log position.' } },
} as const;

export const topicParams = {
  type: 'object',
  required: ['topic'],
  properties: { topic: { type: 'string', description: 'A topic, e.g. order.created.' } },
} as const;

export const topicView = {
  type: 'object',
  required: ['topic', 'published', 'validated'],
  properties: {
    topic: { type: 'string' },
    description: { type: 'string' },
    schema: { description: 'The JSON Schema its data must match.' },
    published: { type: 'integer', description: 'Events published to it since the server started.' },
    validated: { type: 'boolean', description: 'Whether data is checked against a schema.' },
  },
} as const;
