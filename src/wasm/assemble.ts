/**
 * A minimal WebAssembly assembler for the SDK's few SIMD kernels (YOLO's score scan, the resize's
 * vertical pass): modules are assembled from their instructions at run time, so there is no build step
 * and no binary in the repository. Opcode bytes follow the WebAssembly core and SIMD specifications.
 */

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const str = (s: string) => [...uleb(s.length), ...Buffer.from(s, "utf8")];
export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

const simd = (code: number) => [0xfd, ...uleb(code)];

/** The instructions the kernels use. */
export const op = {
  block: [0x02, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  loop: [0x03, 0x40],
  end: [0x0b],
  /** The end of a counted loop: branch back to the start of the `loop`, then end it and its `block`. */
  loopEnd: [0x0c, 0x00, 0x0b, 0x0b],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  /** local i += n (i32): a loop's pointer or counter stepping on. */
  inc: (i: number, n: number) => [0x20, ...uleb(i), 0x41, ...sleb(n), 0x6a, 0x21, ...uleb(i)],
  i32Load: [0x28, 2, 0],
  i32Store: [0x36, 2, 0],
  i32Eqz: [0x45],
  i32Ne: [0x47],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Or: [0x72],
  i32Shl: [0x74],
  v128Load: (offset: number) => [...simd(0x00), 0, ...uleb(offset)],
  v128Load64Zero: (offset: number) => [...simd(0x5d), 0, ...uleb(offset)],
  v128Load32Zero: (offset: number) => [...simd(0x5c), 0, ...uleb(offset)],
  i32x4ExtractLane: (lane: number) => [...simd(0x1b), lane],
  v128Store: (offset: number) => [...simd(0x0b), 0, ...uleb(offset)],
  /** i8x16.shuffle: 16 lane indices into the 32 bytes of its two operands. */
  shuffle: (lanes: readonly number[]) => [...simd(0x0d), ...lanes],
  i16x8ExtendLowU: simd(0x89),
  i16x8ExtendHighU: simd(0x8a),
  i32x4ExtendLowU: simd(0xa9),
  i32x4ExtendHighU: simd(0xaa),
  i32x4DotI16x8S: simd(0xba),
  i8x16NarrowI16x8U: simd(0x66),
  i32x4Splat: simd(0x11),
  f32x4Splat: simd(0x13),
  f32x4Gt: simd(0x44),
  bitselect: simd(0x52),
  i16x8NarrowI32x4S: simd(0x85),
  i32x4Bitmask: simd(0xa4),
  i32x4ShrS: simd(0xac),
  i32x4Add: simd(0xae),
  i32x4Mul: simd(0xb5),
  f32x4Pmax: simd(0xeb),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  f32x4Div: simd(0xe7),
  f32x4ConvertI32x4S: simd(0xfa),
};

/** One exported function: parameter and result types, then its body (locals vector and code, ending in `end`). */
export interface WasmFunction {
  name: string;
  params: number[];
  results: number[];
  body: number[];
}

/** A module importing its memory as env.memory and exporting `functions`. */
export function moduleBytes(functions: WasmFunction[]): Uint8Array {
  const types = vec(functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]));
  const imports = vec([[...str("env"), ...str("memory"), 0x02, 0x00, ...uleb(1)]]);
  const funcs = vec(functions.map((_, i) => uleb(i)));
  const exports = vec(functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]));
  const bodies = functions.map((f) => [...uleb(f.body.length), ...f.body]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, vec(bodies)),
  ]);
}

// The WebAssembly global, typed here: the project compiles without the DOM library that declares it.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
const WebAssembly = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/**
 * `bytes` (a multiple of 64 KiB) of fresh memory that starts on a page boundary, as a WebAssembly memory
 * always does (JavaScript has no other way to ask for alignment); undefined without WebAssembly.
 */
export function pageAlignedMemory(bytes: number): ArrayBuffer | undefined {
  return WebAssembly ? new WebAssembly.Memory({ initial: bytes / 65536 }).buffer : undefined;
}

/** The compiled module, or null where the runtime has no WebAssembly SIMD. */
export function compileModule(bytes: Uint8Array): object | null {
  if (!WebAssembly) return null;
  try {
    return WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    return null;
  }
}

/** An instance of `module` with a fresh memory of `pages` 64 KiB pages; its exports typed as `T`. */
export function instantiate<T>(module: object, pages = 1): { memory: WasmMemory; exports: T } {
  const memory = new WebAssembly!.Memory({ initial: pages });
  const inst = new WebAssembly!.Instance(module, { env: { memory } });
  return { memory, exports: inst.exports as unknown as T };
}
