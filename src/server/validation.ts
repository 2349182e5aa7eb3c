import ajv from 'ajv';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';

// Query strings and path parameters arrive as text: "10" must become 10.
// Bodies are JSON already, and coercing them would accept `"id": 5` as "5".
const forText = new ajv.default({ coerceTypes: 'array', useDefaults: true, strict: false, allErrors: false });
const forBodies = new ajv.default({ coerceTypes: false, useDefaults: true, strict: false, allErrors: false });

const compileText: FastifySchemaCompiler<any> = ({ schema }) => forText.compile(schema as object);

/**
 * Installs the route schema validators: coercing for query strings, path
 * parameters and headers, strict for bodies. Route schemas are the one
 * source of both the validation and the OpenAPI document.
 *
 * @example
 * ```ts
 * installValidation(app);
 * app.get('/v1/events', { schema: { querystring: { type: 'object', properties: { limit: { type: 'integer' } } } } }, handler);
 * ```
 */
export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? forBodies : forText).compile(schema as object));
  // Responses are serialised as they are: the response schemas document
  // them, and must not drop a CloudEvent's extension attributes on the way.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}

/**
 * A route's `validatorCompiler` for a body its handler checks itself (the
 * CloudEvents modes, where the body may be any data): the body schema only
 * documents it; the other parts are validated as usual.
 *
 * @example
 * ```ts
 * app.post('/v1/events', { validatorCompiler: bodyDocumentedOnly, schema: { body } }, handler);
 * ```
 */
export const bodyDocumentedOnly: FastifySchemaCompiler<any> = (route) =>
  route.httpPart === 'body' ? () => true : compileText(route);

/**
 * A route's `preValidation` for an optional JSON body: no body counts as
 * `{}`, so the schema validates it and the handler needs no special case.
 *
 * @example
 * ```ts
 * app.post('/v1/dead-letters/redrive', { preValidation: emptyBodyAsObject, schema: { body } }, handler);
 * ```
 */
export function emptyBodyAsObject(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  request.body ??= {};
  done();
}
