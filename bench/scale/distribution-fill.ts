/**
 * The same logical content as a Holdfast fill of N, in distribution's own
 * layout under its own prefix: N blobs (1 % in no manifest), N/5 image
 * manifests of config + layers with one tag each, and the links distribution
 * keeps per repository. Digests are real (distribution reads manifests back).
 */
import { createHash } from 'node:crypto';
import type { RunningMinio } from '../../test/support/minio.ts';
import { putMany } from '../../test/support/snowball.ts';

const REPOSITORY = 'scale/big';

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function fillDistribution(minio: RunningMinio, options: { prefix: string; n: number }): Promise<{ keys: number; seconds: number }> {
  const started = performance.now();
  const root = `${options.prefix}/docker/registry/v2`;
  const repo = `${root}/repositories/${REPOSITORY}`;
  const blobKey = (hex: string) => `${root}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  const link = (hex: string) => Buffer.from(`sha256:${hex}`);
  function* entries(): Generator<{ key: string; body: Buffer }> {
    for (let m = 0; m < Math.floor(options.n / 5); m++) {
      const referenced: { hex: string; size: number }[] = [];
      for (let i = m * 5; i < m * 5 + 5; i++) {
        const body = Buffer.from(`holdfast scale blob ${i}`);
        const hex = sha256(body);
        yield { key: blobKey(hex), body };
        yield { key: `${repo}/_layers/sha256/${hex}/link`, body: link(hex) };
        if (i % 100 !== 0) referenced.push({ hex, size: body.length });
      }
      const [config, ...layers] = referenced as [{ hex: string; size: number }, ...{ hex: string; size: number }[]];
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${config.hex}`, size: config.size },
          layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layer.hex}`, size: layer.size })),
        }),
      );
      const hex = sha256(manifest);
      yield { key: blobKey(hex), body: manifest };
      yield { key: `${repo}/_manifests/revisions/sha256/${hex}/link`, body: link(hex) };
      const tag = `t${String(m).padStart(7, '0')}`;
      yield { key: `${repo}/_manifests/tags/${tag}/current/link`, body: link(hex) };
      yield { key: `${repo}/_manifests/tags/${tag}/index/sha256/${hex}/link`, body: link(hex) };
    }
  }
  const keys = await putMany(minio, entries());
  return { keys, seconds: (performance.now() - started) / 1000 };
}
