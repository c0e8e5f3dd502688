/** The points of upload starts, the janitor's purges, `/release` and `/move` a test can pause at, in protocol order. */
export const PROTOCOL_STEPS = Object.freeze({
  start: ['upload-created'],
  purge: ['session-read'],
  release: ['claim-dropped', 'claims-counted', 'lease-taken', 'claims-recounted', 'blob-checked', 'reference-deleted'],
  move: ['claimed', 'deletion-checked', 'destination-checked'],
} as const);

export type ReleaseStep = (typeof PROTOCOL_STEPS.release)[number];
export type MoveStep = (typeof PROTOCOL_STEPS.move)[number];
export type StartStep = (typeof PROTOCOL_STEPS.start)[number];
export type PurgeStep = (typeof PROTOCOL_STEPS.purge)[number];
export type ProtocolStep = `start:${StartStep}` | `purge:${PurgeStep}` | `release:${ReleaseStep}` | `move:${MoveStep}`;

/** Test-only: awaited at each step (with the digest, or the upload name of a start), so a test can hold a call there while another runs. */
export type StepHook = (step: ProtocolStep, digest: string) => Promise<void>;
