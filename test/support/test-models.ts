import { DATATYPES, floatToHalf, halfToFloat, tensor, type DataType, type Tensor } from "../../src/tensor.js";
import type { ComputeContext, TestModel } from "./test-server.js";

/**
 * The fixed set of test models that serve.ts starts and the cross-checks call. Each computes something
 * exact, so a Python or TypeScript client can check the outputs bit for bit.
 */

/** Passes INPUT__0 back as OUTPUT__0: a frame-sized UINT8 NHWC echo for transport tests. */
export const echoUint8: TestModel = {
  name: "echo_uint8",
  inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, -1, -1, 3] }],
  outputs: [{ name: "OUTPUT__0", datatype: "UINT8", shape: [1, -1, -1, 3] }],
  compute: (x) => ({ OUTPUT__0: { ...x.INPUT__0!, name: "OUTPUT__0" } }),
};

/** Two INT64 [1,16] inputs; OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (like Triton's "simple" model). */
export const addInt64: TestModel = {
  name: "add_int64",
  inputs: [
    { name: "INPUT0", datatype: "INT64", shape: [1, 16] },
    { name: "INPUT1", datatype: "INT64", shape: [1, 16] },
  ],
  outputs: [
    { name: "OUTPUT0", datatype: "INT64", shape: [1, 16] },
    { name: "OUTPUT1", datatype: "INT64", shape: [1, 16] },
  ],
  compute: (x) => {
    const a = x.INPUT0!.data as BigInt64Array;
    const b = x.INPUT1!.data as BigInt64Array;
    return {
      OUTPUT0: tensor("OUTPUT0", "INT64", [1, 16], a.map((v, i) => BigInt.asIntN(64, v + b[i]!))),
      OUTPUT1: tensor("OUTPUT1", "INT64", [1, 16], a.map((v, i) => BigInt.asIntN(64, v - b[i]!))),
    };
  },
};

/** OUTPUT__0 = INPUT__0 * scale, in FP32; `scale` is a request parameter (double or int), 2 by default. */
export const scaleFp32: TestModel = {
  name: "scale_fp32",
  inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, -1] }],
  outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, -1] }],
  compute: (x, ctx) => {
    const s = Number(ctx.parameters.scale ?? 2);
    const t = x.INPUT__0!;
    return { OUTPUT__0: tensor("OUTPUT__0", "FP32", t.shape, (t.data as Float32Array).map((v) => v * s)) };
  },
};

/** FP16 in, FP16 out: OUTPUT__0 = INPUT__0 * 2, rounded to half precision (exact unless it overflows). */
export const halfFp16: TestModel = {
  name: "half_fp16",
  inputs: [{ name: "INPUT__0", datatype: "FP16", shape: [1, -1] }],
  outputs: [{ name: "OUTPUT__0", datatype: "FP16", shape: [1, -1] }],
  compute: (x) => {
    const t = x.INPUT__0!;
    return { OUTPUT__0: tensor("OUTPUT__0", "FP16", t.shape, (t.data as Uint16Array).map((h) => floatToHalf(halfToFloat(h) * 2))) };
  },
};

/** BYTES in, BYTES out: each element with ASCII letters upper-cased, other bytes untouched. */
export const bytesUpper: TestModel = {
  name: "bytes_upper",
  inputs: [{ name: "INPUT__0", datatype: "BYTES", shape: [-1] }],
  outputs: [{ name: "OUTPUT__0", datatype: "BYTES", shape: [-1] }],
  compute: (x) => {
    const t = x.INPUT__0!;
    const up = (t.data as Uint8Array[]).map((b) => Uint8Array.from(b, (c) => (c >= 0x61 && c <= 0x7a ? c - 0x20 : c)));
    return { OUTPUT__0: tensor("OUTPUT__0", "BYTES", t.shape, up) };
  },
};

/** `identity_<datatype>` for every datatype: INPUT__0 [-1] passed back as OUTPUT__0. */
export function identity(datatype: DataType, name = `identity_${datatype.toLowerCase()}`): TestModel {
  return {
    name,
    inputs: [{ name: "INPUT__0", datatype, shape: [-1] }],
    outputs: [{ name: "OUTPUT__0", datatype, shape: [-1] }],
    compute: (x) => ({ OUTPUT__0: { ...x.INPUT__0!, name: "OUTPUT__0" } as Tensor }),
  };
}

/** A YOLO-sized model: UINT8 [1,960,960,3] in, FP32 [1,84,18900] out, out[i] = in[i mod len] / 255 + i. */
export const yoloShape960: TestModel = {
  name: "yolo_shape_960",
  inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 960, 960, 3] }],
  outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, 84, 18900] }],
  compute: (x) => {
    const px = x.INPUT__0!.data as Uint8Array;
    const out = new Float32Array(84 * 18900);
    for (let i = 0; i < out.length; i++) out[i] = px[i % px.length]! / 255 + i;
    return { OUTPUT__0: tensor("OUTPUT__0", "FP32", [1, 84, 18900], out) };
  },
};

/** Waits `delay_ms` (request parameter, 1000 by default; cancelled with the call), then echoes INPUT__0. */
export const sleepFp32: TestModel = {
  name: "sleep_fp32",
  inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, -1] }],
  outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, -1] }],
  compute: async (x, ctx: ComputeContext) => {
    const ms = Number(ctx.parameters.delay_ms ?? 1000);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      ctx.signal.addEventListener("abort", () => (clearTimeout(t), reject(new Error("cancelled"))), { once: true });
    });
    return { OUTPUT__0: { ...x.INPUT__0!, name: "OUTPUT__0" } };
  },
};

/** Fails with `negative input N` for a negative element, else doubles: for per-request error paths. */
export const failsOnNegative: TestModel = {
  name: "fails_on_negative",
  inputs: [{ name: "INPUT__0", datatype: "INT32", shape: [-1] }],
  outputs: [{ name: "OUTPUT__0", datatype: "INT32", shape: [-1] }],
  compute: (x) => {
    const d = x.INPUT__0!.data as Int32Array;
    const bad = d.find((v) => v < 0);
    if (bad !== undefined) throw new Error(`negative input ${bad}`);
    return { OUTPUT__0: tensor("OUTPUT__0", "INT32", x.INPUT__0!.shape, d.map((v) => v * 2)) };
  },
};

/** Every model above, fresh objects each call (a server may mark them ready or not). */
export function testModels(): TestModel[] {
  return [
    echoUint8, addInt64, scaleFp32, halfFp16, bytesUpper, yoloShape960, sleepFp32, failsOnNegative,
    ...DATATYPES.map((dt) => identity(dt)),
  ].map((m) => ({ ...m }));
}
