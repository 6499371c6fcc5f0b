import { timingSafeEqual } from 'node:crypto';
import { MAX_JSON_DEPTH, nestedTooDeep } from '@switchyard/protocol';
import type { HeaderList } from './http-hygiene.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/** What a route answers; written in one corked call so headers and body leave together. */
export interface HttpReply {
  status: number;
  body: unknown;
  contentType?: string;
  headers?: Readonly<Record<string, string>>;
}

export interface RequestInfo {
  method: string;
  url: string;
  query: string;
  authorization: string;
  origin: string;
  contentType: string;
  /** Only for POST/PUT/PATCH routes registered with a body limit. */
  body?: Buffer;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trimEnd();
}

/** Writes a reply; must run inside `res.cork` when called asynchronously. */
export function writeReply(res: HttpResponse, reply: HttpReply, common: HeaderList): void {
  res.writeStatus(statusLine(reply.status));
  for (const [k, v] of common) res.writeHeader(k, v);
  if (reply.headers !== undefined) for (const [k, v] of Object.entries(reply.headers)) res.writeHeader(k, v);
  if (reply.status === 204) {
    res.endWithoutBody();
    return;
  }
  const isText = typeof reply.body === 'string';
  res.writeHeader('Content-Type', reply.contentType ?? (isText ? 'text/plain; charset=utf-8' : 'application/json'));
  res.end(isText ? (reply.body as string) : JSON.stringify(reply.body));
}

/**
 * Codes whose answer the contract spells out exactly (PROTOCOL.md §9): `{"error":"<code>"}` and
 * nothing else. Other errors answer `{"error":"<human text>","code":"<code>"}`.
 */
const CONTRACT_BODIES = new Set(['bad_json', 'rate_limited']);

export function errorReply(err: unknown): HttpReply {
  if (err instanceof HttpError) {
    return { status: err.status, body: CONTRACT_BODIES.has(err.code) ? { error: err.code } : { error: err.message, code: err.code } };
  }
  return { status: 500, body: { error: 'internal error', code: 'internal' } };
}

/**
 * Reads the request into a Buffer, refusing it as soon as it passes `limit` so a large
 * upload costs at most `limit` bytes of memory.
 */
function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      size += chunk.byteLength;
      if (size > limit) {
        failed = true;
        reject(new HttpError(413, 'too_large', `body larger than ${limit} bytes`));
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

export type Handler = (info: RequestInfo) => HttpReply | Promise<HttpReply>;

/** The headers every answer carries, given the request (cluster headers, CORS, nosniff). */
export type CommonHeaders = (info?: RequestInfo) => HeaderList;

/**
 * Runs before the body is read (authentication, budgets): a caller without the right learns
 * nothing about what a valid body is, and costs no body read.
 */
export type Gate = (info: RequestInfo) => void | Promise<void>;

/**
 * Adapts an async handler to uWS: captures what it needs from `req` synchronously (uWS
 * invalidates it on return), tracks abort, and writes the reply corked.
 */
export function route(
  handler: Handler,
  common: CommonHeaders,
  bodyLimit?: number,
  gate?: Gate,
): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const info: RequestInfo = {
      method: req.getMethod(),
      url: req.getUrl(),
      query: req.getQuery() ?? '',
      authorization: req.getHeader('authorization'),
      origin: req.getHeader('origin'),
      contentType: req.getHeader('content-type'),
    };
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const finish = (reply: HttpReply) => {
      if (aborted) return;
      res.cork(() => writeReply(res, reply, common(info)));
    };
    // uWS needs onData registered before this handler returns; the gate decides whether its bytes are kept.
    const body = bodyLimit === undefined ? Promise.resolve(undefined) : readBody(res, bodyLimit);
    body.catch(() => undefined);
    Promise.resolve()
      .then(() => gate?.(info))
      .then(() => body)
      .then((buf) => {
        if (buf !== undefined) info.body = buf;
        return handler(info);
      })
      .then(finish, (err: unknown) => finish(errorReply(err)));
  };
}

function parseJson(info: RequestInfo): unknown {
  const text = info.body?.toString('utf8') ?? '';
  if (nestedTooDeep(text)) throw new HttpError(400, 'bad_json', `body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'bad_json', 'body is not valid JSON');
  }
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'bad_frame', 'body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function parseJsonBody(info: RequestInfo): Record<string, unknown> {
  return asObject(parseJson(info));
}

/** A JSON object, or an array (the batch form of an endpoint); anything else is `bad_frame`. */
export function parseJsonBodyOrArray(info: RequestInfo): Record<string, unknown> | unknown[] {
  const value = parseJson(info);
  return Array.isArray(value) ? value : asObject(value);
}

export function bearer(authorization: string): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

/** Constant-time comparison of a configured API key with a presented one. */
export function keyMatches(expected: string | undefined, presented: string | undefined): boolean {
  if (expected === undefined || presented === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
