import { z } from 'zod';

/** A DID as config and user files name one: `did:<method>:<method-specific id>` (no path, query or fragment). */
export const DID_PATTERN = /^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/;

export const didSchema = z.string().regex(DID_PATTERN, 'must be a DID such as did:plc:abc123');
