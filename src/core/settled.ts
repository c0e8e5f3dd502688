/**
 * `Promise.all` that waits for every call to end before it rethrows the
 * first failure: a caller that runs the work again must not overlap calls
 * still in flight from the first attempt.
 */
export async function allSettled<T extends readonly unknown[]>(work: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(work);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
