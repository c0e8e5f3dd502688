import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Delivery signatures, in the Standard Webhooks layout: HMAC-SHA256, keyed
 * with the endpoint's secret, over `<webhook-id>.<webhook-timestamp>.<body>`,
 * sent as `webhook-signature: v1,<base64>`. The timestamp is the attempt's,
 * so a receiver refuses old ones; the id is the event's, so it drops repeats.
 */
export function signDelivery(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** A receiver's check: the signature matches and the timestamp is within `toleranceSeconds` of `now` (seconds). */
export function verifyDelivery(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string, now = Date.now() / 1000, toleranceSeconds = 300): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isInteger(timestamp) || Math.abs(now - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signDelivery(secret, headers.id, timestamp, body));
  return headers.signature.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
