import v8 from 'node:v8';
import vm from 'node:vm';

/** A full garbage collection without `--expose-gc`, so a memory figure reads live objects, not garbage. */
export function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}
