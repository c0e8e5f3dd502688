/** An operator's mistake (a missing file, a wrong flag): one line on stderr, exit code 2, no stack trace. */
export class UsageError extends Error {}
