import { pathToFileURL } from 'node:url';
import path from 'node:path';
import type { Logger } from 'pino';
import type { StorageDriver } from './http/context.ts';

/**
 * Loads the storage driver the config names, the way Verdaccio loads a
 * storage plugin: a module whose default export is a factory
 * `(options, { logger }) → driver`. `hold` is the built-in hold driver.
 */
export async function loadStorageDriver(specifier: string, options: Record<string, unknown>, context: { logger: Logger }): Promise<StorageDriver> {
  const target = specifier === 'hold' ? builtInDriver() : toImportable(specifier);
  const loaded = (await import(target)) as { default?: unknown };
  if (typeof loaded.default !== 'function') {
    throw new TypeError(`storage module ${specifier} has no default export factory`);
  }
  const driver = (loaded.default as (options: unknown, context: unknown) => unknown)(options, context);
  if (!driver || typeof (driver as StorageDriver).blobStore !== 'function' || typeof (driver as StorageDriver).close !== 'function') {
    throw new TypeError(`storage module ${specifier} did not return a driver with blobStore() and close()`);
  }
  return driver as StorageDriver;
}

/** The hold driver beside this module: `.ts` when run from the sources, `.js` when built. */
function builtInDriver(): string {
  const extension = path.extname(new URL(import.meta.url).pathname);
  return new URL(`../driver/index${extension}`, import.meta.url).href;
}

function toImportable(specifier: string): string {
  return path.isAbsolute(specifier) ? pathToFileURL(specifier).href : specifier;
}
