// Calling sparsekern.wasm from JavaScript (Node.js >= 20; in a browser, replace node:wasi
// with any WASI preview1 shim: the module imports only environ_get, environ_sizes_get
// and proc_exit).
//
//   node wasm/example.mjs build/wasm/wasm/sparsekern.wasm
//
// Computes Y = W @ X for a small random sparse W through the exported C ABI
// (sk_f32_spmm_unstructured, sparsekern.h), checks it against a dense product computed
// here, and exits non-zero on a mismatch. Memory layout on wasm32: pointers are 4 bytes,
// int64_t is 8 bytes aligned to 8, so sk_csr_f32 is
//   rows@0 cols@8 nnz@16 (int64) idx_bits@24 (int32) row_ptr@28 col_idx@32 values@36
//   panel_off@40 panel_val@44 panel_col@48 (pointers) -> 56 bytes.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, exit } from 'node:process';

const path = argv[2] ?? 'sparsekern.wasm';
const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
const { instance } = await WebAssembly.instantiate(await readFile(path), wasi.getImportObject());
wasi.initialize(instance);             // a reactor module: runs its constructors, no main
const sk = instance.exports;
const cstr = (p) => {
  const b = new Uint8Array(sk.memory.buffer, p);
  return new TextDecoder().decode(b.subarray(0, b.indexOf(0)));
};
console.log(`sparsekern ${cstr(sk.sk_version())}, ISA ${cstr(sk.sk_isa_name(sk.sk_get_isa()))}`);

// W[rows, cols] with about 20% nonzeros, X[cols, n], both random.
const rows = 37, cols = 53, n = 5;
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const rowPtr = [0], colIdx = [], vals = [];
for (let r = 0; r < rows; r++) {
  for (let k = 0; k < cols; k++) if (Math.abs(rand()) < 0.2) { colIdx.push(k); vals.push(rand()); }
  rowPtr.push(colIdx.length);
}
const nnz = vals.length;
const x = Float32Array.from({ length: cols * n }, rand);

// Arrays live in the module's memory: allocate with its malloc (64-byte aligned).
const alloc = (bytes) => sk.aligned_alloc(64, Math.max(64, Math.ceil(bytes / 64) * 64));
const pRowPtr = alloc(8 * (rows + 1)), pCol = alloc(2 * nnz), pVal = alloc(4 * nnz);
const pX = alloc(4 * cols * n), pY = alloc(4 * rows * n), pW = alloc(56);
const mem = () => sk.memory.buffer;   // re-read after any call that may grow memory
new BigInt64Array(mem(), pRowPtr, rows + 1).set(rowPtr.map(BigInt));
new Uint16Array(mem(), pCol, nnz).set(colIdx);
new Float32Array(mem(), pVal, nnz).set(vals);
new Float32Array(mem(), pX, cols * n).set(x);
const w = new DataView(mem(), pW, 56);
w.setBigInt64(0, BigInt(rows), true);
w.setBigInt64(8, BigInt(cols), true);
w.setBigInt64(16, BigInt(nnz), true);
w.setInt32(24, 16, true);                  // 16-bit column indices
w.setUint32(28, pRowPtr, true);
w.setUint32(32, pCol, true);
w.setUint32(36, pVal, true);
for (const off of [40, 44, 48]) w.setUint32(off, 0, true);   // no panel layout

const status = sk.sk_f32_spmm_unstructured(pW, pX, BigInt(n), BigInt(n), 0, pY, BigInt(n));
if (status !== 0) { console.error(`sk_f32_spmm_unstructured returned ${status}`); exit(1); }

const y = new Float32Array(mem(), pY, rows * n);
let maxErr = 0;
for (let r = 0; r < rows; r++)
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) s += Math.fround(vals[p]) * x[colIdx[p] * n + j];
    maxErr = Math.max(maxErr, Math.abs(s - y[r * n + j]));
  }
for (const p of [pRowPtr, pCol, pVal, pX, pY, pW]) sk.free(p);
console.log(`W ${rows}x${cols} (${nnz} nonzeros) @ X ${cols}x${n}: max |error| ${maxErr.toExponential(2)}`);
exit(maxErr < 1e-4 ? 0 : 1);
