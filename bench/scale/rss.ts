/**
 * Registry memory with many uploads open and idle: `count` uploads, each a
 * POST and one 1 MiB PATCH (with its length), left uncommitted; the peak
 * while they open, and the resident set once they have sat idle.
 */
import { request } from 'undici';
import { benchAgent } from '../oci-push.ts';
import { sampleRss } from '../measure.ts';
import { APP } from './fill.ts';

const CHUNK = Buffer.alloc(1024 * 1024, 7);

export async function currentRssMiB(pid: number): Promise<number> {
  return sampleRss(pid, 1000).stop();
}

async function openIdleUpload(baseUrl: string): Promise<void> {
  const post = await request(`${baseUrl}/v2/${APP}/blobs/uploads/`, { method: 'POST', dispatcher: benchAgent });
  await post.body.dump();
  if (post.statusCode !== 202) throw new Error(`upload POST: ${post.statusCode}`);
  const location = new URL(String(post.headers.location), baseUrl).toString();
  const patch = await request(location, { method: 'PATCH', body: CHUNK, headers: { 'content-type': 'application/octet-stream', 'content-length': String(CHUNK.length) }, dispatcher: benchAgent });
  await patch.body.dump();
  if (patch.statusCode !== 202) throw new Error(`upload PATCH: ${patch.statusCode}`);
}

export async function idleUploadsRss(baseUrl: string, pid: number, options: { count: number; concurrency: number; idleSeconds: number }): Promise<{ uploads: number; peakRssMiB: number; settledRssMiB: number }> {
  const sampler = sampleRss(pid);
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.count) {
        next++;
        await openIdleUpload(baseUrl);
      }
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, options.idleSeconds * 1000));
  const peakRssMiB = await sampler.stop();
  return { uploads: options.count, peakRssMiB, settledRssMiB: await currentRssMiB(pid) };
}
