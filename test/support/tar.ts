/**
 * A minimal ustar writer: regular files only, for MinIO's snowball
 * auto-extract (one PutObject that the server unpacks into many objects).
 * Names over 100 bytes are split at a '/' into the header's prefix field.
 */
const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, length, 'utf8');
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

function splitName(key: string): { name: string; prefix: string } {
  if (Buffer.byteLength(key) <= 100) return { name: key, prefix: '' };
  const cut = key.lastIndexOf('/', key.length - 1);
  for (let at = cut; at > 0; at = key.lastIndexOf('/', at - 1)) {
    const prefix = key.slice(0, at);
    const name = key.slice(at + 1);
    if (Buffer.byteLength(name) <= 100 && Buffer.byteLength(prefix) <= 155) return { name, prefix };
  }
  throw new RangeError(`a tar entry name too long for ustar: ${key}`);
}

export function tarOf(entries: Iterable<{ key: string; body: Buffer }>): Buffer {
  const chunks: Buffer[] = [];
  for (const { key, body } of entries) {
    const header = Buffer.alloc(BLOCK);
    const { name, prefix } = splitName(key);
    field(header, 0, 100, name);
    field(header, 100, 8, octal(0o644, 8));
    field(header, 108, 8, octal(0, 8));
    field(header, 116, 8, octal(0, 8));
    field(header, 124, 12, octal(body.length, 12));
    field(header, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
    field(header, 148, 8, '        ');
    field(header, 156, 1, '0');
    field(header, 257, 8, 'ustar\u000000');
    field(header, 345, 155, prefix);
    let sum = 0;
    for (const byte of header) sum += byte;
    field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    chunks.push(header, body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK));
  }
  chunks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(chunks);
}
