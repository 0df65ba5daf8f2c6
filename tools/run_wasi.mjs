// Runs a WASI command module (a .wasm with a main) under Node.js >= 20:
//   node tools/run_wasi.mjs PROGRAM.wasm [args...]
// exits with the program's exit status. The module gets no filesystem access.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, exit } from 'node:process';

const [path, ...args] = argv.slice(2);
if (!path) {
  console.error('usage: node run_wasi.mjs PROGRAM.wasm [args...]');
  exit(2);
}
const wasi = new WASI({ version: 'preview1', args: [path, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
