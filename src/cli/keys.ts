import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';

export interface SigningKeyFiles {
  privateKey: string;
  publicKey: string;
}

/**
 * Loads the registry's service-token key pair from `dir`, creating an Ed25519
 * pair (private key mode 0600) on first use.
 */
export async function ensureSigningKey(dir: string): Promise<SigningKeyFiles> {
  const privatePath = path.join(dir, 'registry-signing.key');
  const publicPath = path.join(dir, 'registry-signing.pub');
  try {
    return { privateKey: await readFile(privatePath, 'utf8'), publicKey: await readFile(publicPath, 'utf8') };
  } catch {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const pair = await generateKeyPair('EdDSA', { extractable: true });
    const keys = { privateKey: await exportPKCS8(pair.privateKey), publicKey: await exportSPKI(pair.publicKey) };
    await writeFile(privatePath, keys.privateKey, { mode: 0o600 });
    await writeFile(publicPath, keys.publicKey);
    return keys;
  }
}
