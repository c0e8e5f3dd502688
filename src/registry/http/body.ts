import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../errors.ts';

/**
 * Reads a request body up to `limit` bytes; more is `tooLarge`. The rest of
 * an oversized body is read and dropped, so the client gets the error
 * response instead of a reset connection.
 */
export async function readBody(stream: IncomingMessage, limit: number, tooLarge: () => RegistryError): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  if (size > limit) throw tooLarge();
  return Buffer.concat(chunks);
}

/** Discards a body the route does not use. */
export async function drain(stream: IncomingMessage): Promise<void> {
  for await (const _chunk of stream) {
    // discard
  }
}

/**
 * A PATCH/PUT `Content-Range`: `<start>-<end>` (inclusive), as the OCI spec
 * writes it; a `bytes ` or `bytes=` prefix is tolerated.
 */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined | 'invalid' {
  if (header === undefined || header === '') return undefined;
  const match = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match) return 'invalid';
  const start = Number(match[1]);
  const end = Number(match[2]);
  return end < start ? 'invalid' : { start, end };
}
