import type { ManifestRecord } from '../../../metadata/oci/types.ts';
import type { UiContext, UiRequest } from '../context.ts';
import { html, href, type Html } from '../html.ts';
import type { ConfigOutcome, ImageConfigView } from '../image-config.ts';
import { bytes, clipped, copyable, page, shortDigest, when } from '../layout.ts';
import { isImageConfig, platformName, typeLabel } from './repository.ts';

/** Most index entries, layers, referrers and tags one page lists. */
const MAX_LISTED = 500;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** One manifest: an image's layers and config, or an index's platforms; its annotations, tags and referrers. */
export async function manifestPage(ui: UiContext, call: UiRequest, manifest: ManifestRecord): Promise<Html> {
  const name = manifest.repository;
  const parsed = parse(manifest.content);
  const [tags, referrers, summaries] = await Promise.all([
    ui.browse.tagsOf(name, manifest.digest, MAX_LISTED),
    ui.browse.referrers(name, manifest.digest, MAX_LISTED + 1),
    ui.browse.summaries(name, [manifest.digest]),
  ]);
  const summary = summaries.get(manifest.digest);
  const entries = descriptors(parsed.manifests);
  const layers = descriptors(parsed.layers);
  const configDescriptor = descriptors([parsed.config])[0];
  const config: ConfigOutcome | undefined = configDescriptor ? await ui.configs.read(call.identity.did, configDescriptor) : undefined;
  const mayDelete = ui.registry.authorizer.mayDelete(call.identity, name) && (call.viewer.signedIn || !call.viewer.loginEnabled);
  const reference = `${ui.pullHost}/${name}`;
  const subject = descriptors([parsed.subject])[0];

  const body = html`<p><a href="${href(['r', name])}">${name}</a></p>
<h1><code>${manifest.digest}</code></h1>
<dl class="kv">
<dt>Type</dt><dd class="mono">${clipped(manifest.mediaType)}</dd>
${manifest.artifactType && !isImageConfig(manifest.artifactType) ? html`<dt>Artifact type</dt><dd class="mono">${clipped(manifest.artifactType)}</dd>` : ''}
<dt>Manifest size</dt><dd>${bytes(manifest.content.length)}</dd>
${summary?.bytes !== undefined ? html`<dt>Compressed size</dt><dd>${bytes(summary.bytes)}${entries.length > 0 ? html` <span class="muted">(all platforms, shared layers once)</span>` : ''}</dd>` : ''}
<dt>Tags</dt><dd>${tags.length === 0 ? html`<span class="muted">none</span>` : tags.map((tag) => html`<span class="badge">${tag}</span>`)}</dd>
${subject ? html`<dt>Subject</dt><dd><a href="${href(['r', name, '-', 'manifests', subject.digest])}"><code>${subject.digest}</code></a></dd>` : ''}
</dl>
<div class="panel"><h2>Pull</h2>
${copyable('docker', `docker pull ${reference}@${manifest.digest}`)}
${copyable('podman', `podman pull ${reference}@${manifest.digest}`)}
${copyable('crane', `crane pull ${reference}@${manifest.digest} image.tar`)}
${tags[0] ? copyable('by tag', `${reference}:${tags[0]}`) : ''}</div>
${entries.length > 0 ? platformsTable(name, entries, summary?.platforms) : ''}
${configDescriptor ? configSection(configDescriptor, config) : ''}
${layers.length > 0 ? layersTable(layers) : ''}
${annotationsSection('Annotations', manifest.annotations)}
${referrersSection(name, referrers)}
${mayDelete ? html`<h2>Delete</h2><p><a class="button danger" href="${href(['r', name, '-', 'delete'], { digest: manifest.digest })}">Delete this manifest…</a></p>` : ''}`;
  return page(call.viewer, `${name}@${shortDigest(manifest.digest)}`, body, { path: href(['r', name, '-', 'manifests', manifest.digest]) });
}

function platformsTable(name: string, entries: Descriptor[], sizes: { digest: string; bytes?: number }[] | undefined): Html {
  return html`<h2>Platforms</h2><table><thead><tr><th scope="col">Platform</th><th scope="col">Manifest</th><th scope="col" class="num">Size</th></tr></thead><tbody>
${entries.slice(0, MAX_LISTED).map((entry) => {
  const size = sizes?.find((item) => item.digest === entry.digest)?.bytes;
  const link = href(['r', name, '-', 'manifests', entry.digest]);
  return html`<tr><td><a href="${link}">${entry.platform ? platformName(entry.platform) : typeLabel(entry.mediaType, entry.artifactType)}</a></td><td><a href="${href(['r', name, '-', 'manifests', entry.digest])}"><code>${shortDigest(entry.digest)}</code></a></td><td class="num">${size !== undefined ? bytes(size) : ''}</td></tr>`;
})}
</tbody></table>`;
}

function layersTable(layers: Descriptor[]): Html {
  return html`<h2>Layers</h2><table><thead><tr><th scope="col">#</th><th scope="col">Digest</th><th scope="col">Type</th><th scope="col" class="num">Size</th></tr></thead><tbody>
${layers.slice(0, MAX_LISTED).map((layer, index) => html`<tr><td>${index + 1}</td><td><code title="${layer.digest}">${shortDigest(layer.digest)}</code></td><td class="mono">${clipped(layer.mediaType)}</td><td class="num">${bytes(layer.size)}</td></tr>`)}
</tbody></table>${layers.length > MAX_LISTED ? html`<p class="muted">${layers.length - MAX_LISTED} more layers not shown.</p>` : ''}`;
}

function configSection(descriptor: Descriptor, outcome: ConfigOutcome | undefined): Html {
  const heading = html`<h2>Config</h2><p class="muted"><code>${descriptor.digest}</code> · ${bytes(descriptor.size)}</p>`;
  if (!outcome || 'unavailable' in outcome) return html`${heading}<p class="muted">${outcome ? outcome.unavailable : 'no config'}</p>`;
  const config: ImageConfigView = outcome.config;
  const list = (values: string[] | undefined) => (values && values.length > 0 ? html`<code>${clipped(JSON.stringify(values))}</code>` : html`<span class="muted">none</span>`);
  return html`${heading}<dl class="kv">
<dt>Platform</dt><dd>${platformName(config)}</dd>
<dt>Created</dt><dd>${config.created ? when(config.created) : html`<span class="muted">unknown</span>`}</dd>
${config.author ? html`<dt>Author</dt><dd>${clipped(config.author)}</dd>` : ''}
<dt>Entrypoint</dt><dd>${list(config.entrypoint)}</dd>
<dt>Command</dt><dd>${list(config.cmd)}</dd>
${config.workingDir ? html`<dt>Working directory</dt><dd><code>${clipped(config.workingDir)}</code></dd>` : ''}
${config.user ? html`<dt>User</dt><dd><code>${clipped(config.user)}</code></dd>` : ''}
${config.exposedPorts ? html`<dt>Ports</dt><dd>${config.exposedPorts.slice(0, MAX_LISTED).map((port) => html`<span class="badge">${clipped(port)}</span>`)}</dd>` : ''}
</dl>
${config.env && config.env.length > 0 ? html`<h3>Environment</h3><ul class="mono">${config.env.slice(0, MAX_LISTED).map((line) => html`<li>${clipped(line)}</li>`)}</ul>` : ''}
${annotationsSection('Labels', config.labels ? Object.fromEntries(config.labels) : undefined)}
${config.history && config.history.length > 0 ? html`<h3>History</h3><table><thead><tr><th scope="col">Created</th><th scope="col">Step</th></tr></thead><tbody>
${config.history.slice(0, MAX_LISTED).map((line) => html`<tr><td>${when(line.created)}</td><td><code>${clipped(line.createdBy ?? '')}</code>${line.emptyLayer ? html` <span class="badge">no layer</span>` : ''}${line.comment ? html`<br><span class="muted">${clipped(line.comment)}</span>` : ''}</td></tr>`)}
</tbody></table>` : ''}`;
}

function annotationsSection(title: string, values: Record<string, string> | undefined): Html {
  const entries = Object.entries(values ?? {});
  if (entries.length === 0) return html``;
  return html`<h3>${title}</h3><dl class="kv">${entries.slice(0, MAX_LISTED).map(([key, value]) => html`<dt>${clipped(key)}</dt><dd>${clipped(String(value))}</dd>`)}</dl>`;
}

function referrersSection(name: string, referrers: { digest: string; mediaType: string; artifactType?: string; size: number }[]): Html {
  if (referrers.length === 0) return html`<h2>Referrers</h2><p class="muted">No signatures, SBOMs or attestations refer to this manifest.</p>`;
  return html`<h2>Referrers</h2><table><thead><tr><th scope="col">Artifact type</th><th scope="col">Manifest</th><th scope="col" class="num">Size</th></tr></thead><tbody>
${referrers.slice(0, MAX_LISTED).map((referrer) => html`<tr><td class="mono">${typeLabel(referrer.mediaType, referrer.artifactType)}</td><td><a href="${href(['r', name, '-', 'manifests', referrer.digest])}"><code>${shortDigest(referrer.digest)}</code></a></td><td class="num">${bytes(referrer.size)}</td></tr>`)}
</tbody></table>${referrers.length > MAX_LISTED ? html`<p class="muted">More referrers than the ${MAX_LISTED} shown; the API lists them all.</p>` : ''}`;
}

function parse(content: Buffer): { manifests?: unknown; layers?: unknown; config?: unknown; subject?: unknown } {
  try {
    const parsed = JSON.parse(content.toString('utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function descriptors(value: unknown): Descriptor[] {
  const list = Array.isArray(value) ? (value as unknown[]) : value === undefined ? [] : [value];
  const result: Descriptor[] = [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const entry = item as Record<string, unknown>;
    if (typeof entry.digest !== 'string' || typeof entry.size !== 'number') continue;
    const platform = entry.platform && typeof entry.platform === 'object' ? (entry.platform as Record<string, unknown>) : undefined;
    result.push({
      digest: entry.digest,
      size: entry.size,
      mediaType: typeof entry.mediaType === 'string' ? entry.mediaType : '',
      ...(typeof entry.artifactType === 'string' ? { artifactType: entry.artifactType } : {}),
      ...(platform
        ? {
            platform: {
              ...(typeof platform.os === 'string' ? { os: platform.os } : {}),
              ...(typeof platform.architecture === 'string' ? { architecture: platform.architecture } : {}),
              ...(typeof platform.variant === 'string' ? { variant: platform.variant } : {}),
            },
          }
        : {}),
    });
  }
  return result;
}
