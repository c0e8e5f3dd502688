import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An S3 proxy in front of MinIO that enforces documented rules of clouds we
 * cannot reach from here, so the driver and hold are tested against them:
 *
 * - r2: all non-trailing parts of a multipart upload must have the same
 *   length (InvalidPart otherwise); no `x-amz-checksum-*` or `aws-chunked`.
 * - b2: no `x-amz-checksum-*` or `aws-chunked`.
 * - storj: no UploadPartCopy; ListMultipartUploads needs a prefix ending in `/`.
 */
export type ProviderRules = 'r2' | 'b2' | 'storj';

export interface ProviderRulesProxy {
  url: string;
  /** Requests refused, with the rule that refused them. */
  refusals: { method: string; path: string; rule: string }[];
  close(): Promise<void>;
}

export async function startProviderRulesProxy(target: string, rules: ProviderRules): Promise<ProviderRulesProxy> {
  const upstream = new URL(target);
  const refusals: ProviderRulesProxy['refusals'] = [];
  const partSizes = new Map<string, Map<number, number>>();

  const refuse = (req: http.IncomingMessage, res: http.ServerResponse, status: number, code: string, rule: string) => {
    refusals.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0] as string, rule });
    req.resume();
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${rule}</Message></Error>`);
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const query = url.searchParams;
    const headers = req.headers;
    const checksumHeader = Object.keys(headers).some((name) => name.startsWith('x-amz-checksum-') || name === 'x-amz-sdk-checksum-algorithm');
    const checksumQuery = [...query.keys()].some((name) => name.toLowerCase().startsWith('x-amz-checksum-') || name.toLowerCase() === 'x-amz-sdk-checksum-algorithm');
    const chunked = String(headers['content-encoding'] ?? '').includes('aws-chunked') || String(headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-');
    if ((rules === 'r2' || rules === 'b2') && (checksumHeader || checksumQuery || chunked)) {
      return refuse(req, res, 400, 'InvalidRequest', `${rules} rejects SDK checksum headers and aws-chunked bodies`);
    }
    if (rules === 'storj' && req.method === 'PUT' && headers['x-amz-copy-source'] && query.has('partNumber')) {
      return refuse(req, res, 501, 'NotImplemented', 'storj has no UploadPartCopy');
    }
    if (rules === 'storj' && req.method === 'GET' && query.has('uploads') && query.has('prefix') && !(query.get('prefix') ?? '').endsWith('/')) {
      return refuse(req, res, 400, 'InvalidArgument', 'storj needs a ListMultipartUploads prefix ending in "/"');
    }
    let body: Buffer | undefined;
    if (rules === 'r2' && req.method === 'PUT' && query.has('uploadId') && query.has('partNumber') && !headers['x-amz-copy-source']) {
      const uploadId = query.get('uploadId') as string;
      const sizes = partSizes.get(uploadId) ?? new Map<number, number>();
      partSizes.set(uploadId, sizes);
      sizes.set(Number(query.get('partNumber')), Number(headers['content-length'] ?? 0));
    }
    if (rules === 'r2' && req.method === 'POST' && query.has('uploadId')) {
      body = await readAll(req);
      const listed = [...body.toString('utf8').matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((match) => Number(match[1]));
      const sizes = partSizes.get(query.get('uploadId') as string) ?? new Map<number, number>();
      const nonTrailing = listed.slice(0, -1).map((part) => sizes.get(part));
      if (nonTrailing.some((size) => size !== nonTrailing[0])) {
        refusals.push({ method: 'POST', path: url.pathname, rule: 'r2 equal parts' });
        res.writeHead(400, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidPart</Code><Message>All non-trailing parts must have the same length.</Message></Error>');
        return;
      }
    }
    const proxied = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (response) => {
      res.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(res);
    });
    proxied.on('error', () => res.destroy());
    if (body) proxied.end(body);
    else req.pipe(proxied);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    refusals,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
