import type { Config, Logger, PluginOptions } from '@verdaccio/types';
import type { HoldfastStoreConfig } from '../../src/verdaccio/index.ts';

const silent = () => {};

/** A logger that drops everything, shaped as Verdaccio's. */
export const SILENT_LOGGER: Logger = { child: () => SILENT_LOGGER, debug: silent, error: silent, http: silent, trace: silent, warn: silent, info: silent };

/**
 * The second argument Verdaccio passes a storage plugin, for constructing the
 * plugin directly: its config (only `self_path`, against which the plugin
 * resolves relative paths, matters to it) and its logger.
 */
export function pluginOptions(configFile: string, logger: Logger = SILENT_LOGGER): PluginOptions<HoldfastStoreConfig> {
  return { config: { self_path: configFile } as unknown as HoldfastStoreConfig & Config, logger };
}
