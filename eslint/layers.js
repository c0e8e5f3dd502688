// The layer rules of src/: which part may import which, and why. Lint
// enforces them (rule `holdfast/layers`); docs/ARCHITECTURE.md names them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');

/**
 * Each unit of src/ (a folder; the longest one that contains a file is its
 * unit) and the units it may import besides itself. `cli` wires everything.
 */
export const LAYERS = {
  core: { may: [], why: 'core is the bottom layer: every part builds on it, so it imports none of them' },
  protocol: { may: ['core'], why: 'the wire contract is shared by the hold and its clients, so it imports neither side' },
  metadata: { may: ['core'], why: 'the metadata database is shared by the registry and the npm plugin, so it imports neither' },
  'metadata/oci': { may: ['core', 'metadata'], why: "the OCI tables (tags, referrers, GC) are the registry's alone and know nothing of npm" },
  'metadata/accounts': { may: ['core', 'metadata'], why: "the registry's users and access tokens: shared by every registry instance, and nothing of OCI or npm" },
  'metadata/events': { may: ['core', 'metadata'], why: 'the events outbox stores what other systems are told, whoever reports it; it knows nothing of OCI or npm' },
  'metadata/npm': { may: ['core', 'metadata'], why: "the npm tables are the plugin's alone and know nothing of OCI" },
  driver: { may: ['core', 'protocol'], why: 'the driver is a client of the hold: it speaks src/protocol and never imports its server' },
  hold: { may: ['core', 'protocol'], why: 'the hold is a server: it never imports a client of it' },
  registry: {
    may: ['core', 'protocol', 'driver', 'metadata', 'metadata/oci', 'metadata/accounts', 'metadata/events', 'registry/ui'],
    why: 'the registry reaches a hold only through the driver, and does not ship the npm plugin',
  },
  'registry/ui': {
    may: ['core', 'metadata', 'metadata/oci', 'metadata/accounts', 'registry'],
    why: "the web pages read the metadata and ask the API's own authorizer; they reach storage only through the registry's context, never the driver or the hold's protocol",
  },
  verdaccio: {
    may: ['core', 'protocol', 'driver', 'metadata', 'metadata/npm'],
    why: "the npm plugin ships on its own: it shares the driver and the metadata database, not the registry's code",
  },
  cli: { may: '*', why: 'the command line wires every part' },
};

const UNITS = Object.keys(LAYERS).sort((a, b) => b.length - a.length);

/** The unit of a path inside src/, or undefined for a path outside it. */
export function unitOf(file) {
  const relative = path.relative(SRC, file).split(path.sep).join('/');
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return UNITS.find((unit) => relative === unit || relative.startsWith(`${unit}/`));
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforces the layer rules of src/ (eslint/layers.js)' },
    schema: [],
    messages: { layer: "src/{{from}} may not import src/{{to}}: {{why}} (eslint/layers.js)." },
  },
  create(context) {
    const filename = context.filename ?? context.getFilename();
    const from = unitOf(filename);
    if (!from || LAYERS[from].may === '*') return {};
    const check = (node) => {
      const source = node?.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
      if (!source || !source.startsWith('.')) return;
      const to = unitOf(path.resolve(path.dirname(filename), source));
      if (!to || to === from || LAYERS[from].may.includes(to)) return;
      context.report({ node, messageId: 'layer', data: { from, to, why: LAYERS[from].why } });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};

export default { rules: { layers: rule } };
