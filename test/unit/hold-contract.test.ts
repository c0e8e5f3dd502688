import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { HOLD_ENDPOINTS, HOLD_ERRORS } from '../../src/protocol/hold-api.ts';
import { HOLD_ROUTES } from '../../src/hold/http/routes.ts';

const DOC = new URL('../../docs/PRESIGNED_URLS.md', import.meta.url);

/** The lines of one `##`/`###` section of the doc. */
function section(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start === -1) throw new Error(`docs/PRESIGNED_URLS.md has no "${heading}"`);
  const level = heading.split(' ')[0] as string;
  const end = lines.findIndex((line, index) => index > start && /^#{2,3} /.test(line) && line.split(' ')[0]!.length <= level.length);
  return lines.slice(start + 1, end === -1 ? undefined : end);
}

/**
 * The top-level fields a table cell names: each code span that is a field
 * (`upload_id`, `writer_epoch?`, `parts[{part_number, etag}]`), not a value
 * (`GET`, `state: completed`, `uploads/temp-<uuid>`).
 */
function fieldsNamed(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => /^([a-z_]+)\??(?:\[\{.*\}\])?$/.exec(match[1] as string)?.[1]).filter((field): field is string => field !== undefined);
}

describe('the hold protocol contract', function () {
  it('has a route for every endpoint and an endpoint for every route', function () {
    expect(Object.keys(HOLD_ROUTES).sort()).to.deep.equal(Object.keys(HOLD_ENDPOINTS).sort());
  });

  it('docs/PRESIGNED_URLS.md lists exactly the endpoints of the contract', async function () {
    const rows = section(await readFile(DOC, 'utf8'), '## Endpoints').filter((line) => line.startsWith('| `/'));
    const documented = rows.map((row) => /^\| `(\/[a-z-]+)`/.exec(row)?.[1]);
    expect(documented.sort()).to.deep.equal(Object.values(HOLD_ENDPOINTS).map((endpoint) => endpoint.path).sort());
  });

  it('docs/PRESIGNED_URLS.md lists exactly the error codes of the contract, with their statuses', async function () {
    const rows = section(await readFile(DOC, 'utf8'), '### Errors').filter((line) => line.startsWith('| `'));
    const documented: Record<string, number> = {};
    for (const row of rows) {
      const [codes = '', status = ''] = row.split('|').slice(1, 3);
      for (const code of codes.matchAll(/`([A-Z_]+)`/g)) documented[code[1] as string] = Number(/\d{3}/.exec(status)?.[0]);
    }
    expect(documented).to.deep.equal(Object.fromEntries(Object.entries(HOLD_ERRORS).map(([code, entry]) => [code, entry.status])));
  });

  it("docs/PRESIGNED_URLS.md names exactly each endpoint's request and answer fields", async function () {
    const rows = section(await readFile(DOC, 'utf8'), '## Endpoints').filter((line) => line.startsWith('| `/'));
    const byPath = new Map(rows.map((row) => row.split('|').map((cell) => cell.trim())).map(([, path = '', body = '', answer = '']) => [path.replaceAll('`', ''), { body, answer }]));
    const mismatches: string[] = [];
    for (const endpoint of Object.values(HOLD_ENDPOINTS)) {
      let row = byPath.get(endpoint.path);
      // "as `/get-presigned-url`": the same fields as that row.
      const same = (cell: string | undefined) => /^as `(\/[a-z-]+)`$/.exec(cell ?? '')?.[1];
      const body = same(row?.body) ? byPath.get(same(row?.body) as string)?.body : row?.body;
      const answer = same(row?.answer) ? byPath.get(same(row?.answer) as string)?.answer : row?.answer;
      row = { body: body ?? '', answer: answer ?? '' };
      const check = (what: string, cell: string, schema: unknown) => {
        const expected = Object.keys((schema as { shape: Record<string, unknown> }).shape).sort();
        const named = [...new Set(fieldsNamed(cell))].sort();
        if (JSON.stringify(named) !== JSON.stringify(expected)) mismatches.push(`${endpoint.path} ${what}: the doc names ${named.join(', ')}; the contract has ${expected.join(', ')}`);
      };
      check('body', row.body, endpoint.request);
      check('answer', row.answer, endpoint.response);
    }
    expect(mismatches).to.deep.equal([]);
  });

  it('refuses an unknown request field and accepts the seed field names', function () {
    expect(HOLD_ENDPOINTS.move.request.safeParse({ did: 'did:plc:a', from: 'uploads/temp-x', to: 'sha256:x', extra: 1 }).success).to.equal(false);
    expect(HOLD_ENDPOINTS.completeMultipart.request.safeParse({ did: 'd', digest: 'n', upload_id: 'u', parts: [{ part_number: 1, etag: '"e"' }] }).success).to.equal(true);
  });
});
