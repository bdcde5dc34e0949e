import * as grpc from "@grpc/grpc-js";
import { parseCommandArgs, numberFlag } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { TritonClient } from "../src/triton/client.js";
import { decodeModelInferResponse, encodeModelInferRequest } from "../src/triton/grpc/codec.js";
import { inferenceService } from "../src/triton/proto.js";
import { inferResult, inferRequest } from "../src/triton/wire.js";
import { tensor } from "../src/tensor.js";
import { TestServer, type TestModel } from "../test/support/test-server.js";
import { percentile, printTable } from "./stats.js";

const SIZES = [320, 640, 960];
const ECHO_PATH = "/bench.Echo/Echo";

/** A bare grpc-js unary echo: the same bytes, no protobuf framing of tensors, no SDK. */
async function startBareEcho(): Promise<{ address: string; server: grpc.Server }> {
  const server = new grpc.Server({ "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 });
  const identity = (b: Buffer) => b;
  server.addService(
    { Echo: { path: ECHO_PATH, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
    { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { address: `127.0.0.1:${port}`, server };
}

function echoModel(size: number): TestModel {
  const spec = [{ name: "INPUT__0", datatype: "UINT8" as const, shape: [1, size, size, 3] }];
  return {
    name: `echo_${size}`,
    inputs: spec,
    outputs: [{ ...spec[0]!, name: "OUTPUT__0" }],
    compute: (inputs) => ({ OUTPUT__0: { ...inputs.INPUT__0!, name: "OUTPUT__0" } }),
  };
}

async function timeIt(n: number, f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
  }
  return out;
}

export const transportBench: Benchmark = {
  summary: "ModelInfer round trips of UINT8 frames against a bare grpc-js echo",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench transport", usage: "video-analysis bench transport [--repeats N] [--json]" }, argv, {
      repeats: { type: "string", value: "N", description: "round trips per payload size (default 60, at least 5)" },
      json: { type: "boolean", description: "print one JSON object instead of the table" },
    });
    const repeats = numberFlag("repeats", values.repeats, 60, { min: 5 });
    const server = await TestServer.start({ models: SIZES.map(echoModel) });
    const bare = await startBareEcho();
    const client = await TritonClient.create({ url: server.address });
    const Bare = grpc.makeGenericClientConstructor({}, "Echo");
    // The bare client gets the SDK client's transport settings (message limit, flow-control window), so
    // the ratio is what protobuf framing and the SDK add, not a difference of configuration.
    const bareClient = new Bare(bare.address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1, "grpc-node.flow_control_window": 16 << 20 });
    const rows: Record<string, number | string>[] = [];
    try {
      for (const size of SIZES) {
        const bytes = size * size * 3;
        const frame = new Uint8Array(bytes).map((_, i) => i * 31);
        const input = tensor("INPUT__0", "UINT8", [1, size, size, 3], frame);
        const viaSdk = async () => {
          const r = await client.infer(`echo_${size}`, [input]);
          if (r.outputs.OUTPUT__0!.data.length !== bytes) throw new Error("echo returned the wrong size");
        };
        const payload = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
        const viaBare = () =>
          new Promise<void>((res, rej) =>
            bareClient.makeUnaryRequest(ECHO_PATH, (b: Buffer) => b, (b: Buffer) => b, payload, (e, r) => (e ? rej(e) : r!.length === bytes ? res() : rej(new Error("bad echo")))),
          );
        await timeIt(5, viaSdk);
        await timeIt(5, viaBare);
        // Interleave the two so drifts of a shared machine hit both alike.
        const sdk: number[] = [];
        const bareT: number[] = [];
        for (let i = 0; i < repeats; i++) {
          sdk.push(...(await timeIt(1, viaSdk)));
          bareT.push(...(await timeIt(1, viaBare)));
        }
        // Where the copies are: encoding the request copies nothing (the frame is sent as it is), decoding
        // the response copies nothing (outputs view the message). Compared with one plain memcpy.
        const request = () => encodeModelInferRequest(inferRequest(`echo_${size}`, [input], {}));
        const wire = request().reduce((n, p) => n + p.byteLength, 0);
        const response = inferenceService().ModelInfer!.responseSerialize({
          model_name: `echo_${size}`, outputs: [{ name: "OUTPUT__0", datatype: "UINT8", shape: [1, size, size, 3] }], raw_output_contents: [payload],
        });
        const memcpy = await timeIt(30, async () => Buffer.from(payload));
        const encode = await timeIt(30, async () => request());
        const decode = await timeIt(30, async () => inferResult("m", decodeModelInferResponse(response)));
        const p50 = percentile(sdk, 50);
        const b50 = percentile(bareT, 50);
        rows.push({
          frame: `${size}x${size}x3`,
          bytes,
          p50_ms: +p50.toFixed(3),
          p95_ms: +percentile(sdk, 95).toFixed(3),
          mb_per_s: +((2 * bytes) / 1e6 / (p50 / 1e3)).toFixed(1),
          bare_echo_p50_ms: +b50.toFixed(3),
          ratio_vs_bare_echo: +(p50 / b50).toFixed(3),
          request_wire_overhead_bytes: wire - bytes,
          encode_vs_memcpy: +(percentile(encode, 50) / percentile(memcpy, 50)).toFixed(2),
          decode_vs_memcpy: +(percentile(decode, 50) / percentile(memcpy, 50)).toFixed(3),
        });
      }
    } finally {
      await client.close();
      bareClient.close();
      bare.server.forceShutdown();
      await server.stop();
    }
    const result = { benchmark: "transport", repeats, note: "mb_per_s counts bytes sent plus received per round trip", rows, goal: "ratio_vs_bare_echo <= 1.15", pass: rows.every((r) => (r.ratio_vs_bare_echo as number) <= 1.15) };
    if (values.json) console.log(JSON.stringify(result));
    else {
      printTable(rows);
      console.log(`goal ${result.goal}: ${result.pass ? "met" : "NOT met"}`);
    }
    return 0;
  },
};
