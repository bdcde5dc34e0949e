/**
 * Triton's own words reach the user: requests the real tritonserver refuses (wrong shape, wrong datatype,
 * an input the model does not have, an unknown model), over gRPC (unary calls carried on streams, a
 * ModelStreamInfer stream, the plain unary call of a sequence request) and HTTP. Each error keeps the
 * server's message verbatim beside the SDK's advice. Where Triton sends no message at all (a wrong shape
 * in a sequence request, on gRPC), the SDK compares the inputs with the model's metadata and says which
 * one is wrong. Skipped with the reason where the server cannot run (see docs/real-tritonserver.md).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { VideoAnalysisError } from "../../src/errors.js";
import { TritonClient } from "../../src/triton/client.js";
import type { InferInput } from "../../src/triton/protocol.js";
import { committedModels, startRealTriton, type RealTriton } from "../support/real-tritonserver.js";

const M = "preprocess_midas_256";

let server: RealTriton | undefined;
let skip: string | false = false;
try {
  const r = await startRealTriton({
    http: true,
    build: committedModels(M),
  });
  if (r.skip !== undefined) skip = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
} catch (e) {
  skip = `the real tritonserver did not start: ${(e as Error).message}`;
}
if (skip) console.log(`# real-triton-errors tests skipped: ${skip}`);

const grpc = server ? await TritonClient.create({ url: server.address }) : undefined;
const http = server ? await TritonClient.create({ url: server.httpAddress!, protocol: "http" }) : undefined;
after(async () => {
  await grpc?.close();
  await http?.close();
  await server?.stop();
});

const u8 = (shape: number[]): InferInput => ({ name: "INPUT__0", datatype: "UINT8", shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1)) });

/** Each refusal: the request, its code, and Triton's own text (as tritonserver 2.51 words it). */
const REFUSALS: Array<{ what: string; model: string; inputs: InferInput[]; code: string; triton: RegExp }> = [
  {
    what: "a wrong shape",
    model: M,
    inputs: [u8([1, 128, 128, 3])],
    code: "INVALID_ARGUMENT",
    triton: /unexpected shape for input 'INPUT__0' for model 'preprocess_midas_256'\. Expected \[1,256,256,3\], got \[1,128,128,3\]/,
  },
  {
    what: "a wrong datatype",
    model: M,
    inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, 256, 256, 3], data: new Float32Array(256 * 256 * 3) }],
    code: "INVALID_ARGUMENT",
    triton: /inference input 'INPUT__0' data-type is 'FP32', but model 'preprocess_midas_256' expects 'UINT8'/,
  },
  {
    what: "an unknown input",
    model: M,
    inputs: [{ ...u8([1, 256, 256, 3]), name: "NOPE" } as InferInput],
    code: "INVALID_ARGUMENT",
    triton: /unexpected inference input 'NOPE' for model 'preprocess_midas_256'/,
  },
  {
    what: "an unknown model",
    model: "no_such_model",
    inputs: [u8([1, 256, 256, 3])],
    code: "NOT_FOUND",
    triton: /Request for unknown model: 'no_such_model' is not found/,
  },
];

async function refusal(call: () => Promise<unknown>): Promise<VideoAnalysisError> {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof VideoAnalysisError, `a VideoAnalysisError, got ${String(e)}`);
    return e;
  }
  assert.fail("the server accepted the request");
}

for (const r of REFUSALS) {
  test(`${r.what}: Triton's message verbatim with the SDK's advice, over gRPC, a gRPC stream and HTTP`, { skip }, async () => {
    for (const [via, call] of [
      ["gRPC", () => grpc!.infer(r.model, r.inputs)],
      ["HTTP", () => http!.infer(r.model, r.inputs)],
    ] as const) {
      const e = await refusal(call);
      assert.equal(e.code, r.code, via);
      assert.match(e.message, r.triton, `${via}: ${e.message}`);
      // The advice: where to look.
      assert.match(e.message, r.code === "NOT_FOUND" ? /check the model name against the server's repository/ : /must match the model's metadata/, `${via}: ${e.message}`);
    }
    const stream = grpc!.stream();
    try {
      const e = await refusal(() => stream.infer(r.model, r.inputs));
      assert.equal(e.code, r.code);
      assert.match(e.message, r.triton, `stream: ${e.message}`);
    } finally {
      await stream.close();
    }
  });
}

test("a sequence request (plain unary gRPC call): Triton's words where it sends them, else the input that differs from the model's metadata", { skip }, async () => {
  const seq = { parameters: { sequence_id: 7, sequence_start: true } };
  for (const r of REFUSALS) {
    const e = await refusal(() => grpc!.infer(r.model, r.inputs, seq));
    assert.equal(e.code, r.code, r.what);
    if (r.what === "a wrong shape" && !r.triton.test(e.message)) {
      // tritonserver 2.51 refuses this one with grpc-status 3 and no grpc-message at all.
      assert.equal(e.message, "the server refused the request without a message; against the model's metadata: input INPUT__0: expected UINT8 [1,256,256,3], got UINT8 [1,128,128,3]");
    } else {
      assert.match(e.message, r.triton, `${r.what}: ${e.message}`);
    }
  }
});
