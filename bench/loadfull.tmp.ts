import { runLoad } from './load.ts';
console.log(JSON.stringify(await runLoad({ quick: false })));
