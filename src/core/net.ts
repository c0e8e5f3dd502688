import net from 'node:net';

/** Ports this process handed out lately, oldest first. */
const handedOut = new Set<number>();
const REMEMBERED_PORTS = 4096;

/**
 * A port that was free on `host` a moment ago (the caller binds it right
 * away), and not one this process handed out lately: the kernel may offer a
 * port again once the probe closed it, before its first taker has bound it,
 * and two servers of one stack then get the same port.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await probePort(host);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (handedOut.size > REMEMBERED_PORTS) handedOut.delete(handedOut.values().next().value as number);
    return port;
  }
  throw new Error('no free port that this process has not handed out lately');
}

function probePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port assigned'))));
    });
  });
}
