import { request } from 'undici';

/** The `metrics.bearerToken` every hold the tests and benches start is given. */
export const TEST_METRICS_TOKEN = 'test-metrics-secret-0123456789';

/** Headers that read a test hold's /metrics. */
export const METRICS_HEADERS = Object.freeze({ authorization: `Bearer ${TEST_METRICS_TOKEN}` });

/** What a hold has done, from its Prometheus /metrics (its own /metrics and /healthz left out). */
export interface HoldCalls {
  /** API requests answered, by endpoint path. */
  requests: Map<string, number>;
  /** The hold's own calls to its storage, by operation (`PutObject`, …). */
  storage: Map<string, number>;
}

export async function holdCalls(holdUrl: string): Promise<HoldCalls> {
  const text = await (await request(`${holdUrl}/metrics`, { headers: METRICS_HEADERS })).body.text();
  return {
    requests: sumByLabel(text, 'holdfast_hold_requests_total', 'endpoint', (endpoint) => endpoint !== '/metrics' && endpoint !== '/healthz'),
    storage: sumByLabel(text, 'holdfast_hold_storage_call_seconds_count', 'operation'),
  };
}

/** How much each counter grew between two readings; counters that did not are left out. */
export function callsSince(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const [key, count] of after) {
    const delta = count - (before.get(key) ?? 0);
    if (delta > 0) grown[key] = delta;
  }
  return grown;
}

function sumByLabel(text: string, metric: string, label: string, keep: (value: string) => boolean = () => true): Map<string, number> {
  const pattern = new RegExp(`^${metric}\\{[^}]*${label}="([^"]+)"[^}]*\\} (\\S+)$`, 'gm');
  const sums = new Map<string, number>();
  for (const [, value, count] of text.matchAll(pattern)) {
    if (value === undefined || !keep(value)) continue;
    sums.set(value, (sums.get(value) ?? 0) + Number(count));
  }
  return sums;
}
