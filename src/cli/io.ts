/** What the commands share: reading the config, stdin, and printing a JSON report. */
import { UsageError } from './usage-error.ts';

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** A config file that is missing, unreadable or not YAML is the operator's mistake, said in one line. */
export async function readConfig<T>(file: string, load: (file: string) => Promise<T>): Promise<T> {
  try {
    return await load(file);
  } catch (err) {
    // `load` reads nothing but the file.
    const { code } = err as NodeJS.ErrnoException;
    if (code === 'ENOENT') throw new UsageError(`config file not found: ${file}`);
    if (code === 'EACCES' || code === 'EISDIR') throw new UsageError(`config file not readable: ${file}`);
    if (err instanceof Error && err.name === 'YAMLParseError') throw new UsageError(`${file} is not valid YAML: ${err.message.split('\n')[0]}`);
    throw err;
  }
}

export async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString();
  return text;
}
