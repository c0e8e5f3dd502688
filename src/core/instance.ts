import { randomUUID } from 'node:crypto';

/**
 * This process's name in its health check and its log: `HOLDFAST_INSTANCE`
 * when set (a pod's name, say), else random. A supervisor that checks it
 * notices when a port it probes is answered by another server.
 */
export const INSTANCE_NAME = process.env.HOLDFAST_INSTANCE?.trim() || randomUUID().slice(0, 8);

/** What `GET /healthz` answers on a registry and on a hold. */
export interface HealthAnswer {
  status: 'ok';
  service: 'registry' | 'hold';
  instance: string;
}

export function healthAnswer(service: HealthAnswer['service']): HealthAnswer {
  return { status: 'ok', service, instance: INSTANCE_NAME };
}
