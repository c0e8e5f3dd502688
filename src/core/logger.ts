import pino, { type Logger, type LoggerOptions } from 'pino';

/**
 * Paths that must never reach a log line. Presigned URLs carry their
 * signature in the query string, so URLs are logged by path only.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'password',
  'secretAccessKey',
  'credentials',
  'token',
  'url',
  '*.url',
];

/** `toStderr` for commands whose stdout is their answer (a JSON report). */
export function createLogger(options: LoggerOptions = {}, { toStderr = false } = {}): Logger {
  const settings = { level: process.env.LOG_LEVEL ?? 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, ...options };
  return toStderr ? pino(settings, pino.destination(2)) : pino(settings);
}

/** Strips the query string, which may hold a signature. */
export function pathOnly(url: string | undefined): string {
  if (!url) return '';
  const index = url.indexOf('?');
  return index === -1 ? url : url.slice(0, index);
}

export const requestSerializers = {
  req(request: { method?: string; url?: string; id?: string | number }) {
    return { method: request.method, path: pathOnly(request.url), id: request.id };
  },
};
