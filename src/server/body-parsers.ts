import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BusbarError } from '../core/errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes bodies of any content type (as a Buffer), not just JSON. */
    anyContentType?: boolean;
  }
}

/** The content types the server parses as JSON. */
export const JSON_TYPES = ['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json'];
/** `application/<anything>+json`: JSON data of a binary-mode CloudEvent. */
const STRUCTURED_SYNTAX_JSON = /^application\/[^;\s]+\+json\b/i;

/**
 * Replaces Fastify's body parsers: JSON types parse with Busbar's errors
 * (`BUSBAR_ERR_INVALID_JSON`, an empty body left undefined for the route to
 * judge), and any other type is refused with 415 except on routes that take
 * raw bodies (binary-mode CloudEvents), which get a Buffer. Fastify's body
 * limit applies to all of them before a byte is parsed.
 *
 * @example
 * ```ts
 * installBodyParsers(app);
 * app.post('/v1/events', { config: { anyContentType: true } }, handler);
 * ```
 */
export function installBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'string' }, parseJson);
  app.addContentTypeParser(STRUCTURED_SYNTAX_JSON, { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if (request.routeOptions.config.anyContentType === true) return done(null, body);
    const type = request.headers['content-type'];
    done(
      new BusbarError(
        'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE',
        `${type === undefined ? 'a body without a content type' : `content type "${type}"`} is not accepted here: send application/json`,
      ),
    );
  });
}

function parseJson(_request: FastifyRequest, body: string | Buffer, done: (error: Error | null, body?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim().length === 0) return done(null, undefined);
  try {
    done(null, JSON.parse(text));
  } catch (error) {
    done(new BusbarError('BUSBAR_ERR_INVALID_JSON', `the request body is not well-formed JSON: ${(error as Error).message}`, { cause: error }));
  }
}
