/**
 * The points of a write and a commit a test can pause at, in protocol
 * order: a writer resumed for a request, a part PUT about to be sent (its
 * URL at hand) and answered, a tail
 * staged, progress recorded, the last part sent, the upload assembled, the
 * object read back, the blob published.
 */
export const WRITER_STEPS = Object.freeze(['resumed', 'part-sending', 'part-sent', 'tail-staged', 'progress-recorded', 'parts-finished', 'completed', 'read-back', 'moved'] as const);

export type WriterStep = (typeof WRITER_STEPS)[number];

/** Test-only: awaited at each step with the upload's name, so a test can hold a writer there while others run. */
export type WriterStepHook = (step: WriterStep, uploadName: string) => Promise<void>;
