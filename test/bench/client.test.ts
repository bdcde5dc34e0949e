/**
 * `bench client` against NVIDIA's real tritonserver (its python-backend bench models): a tiny run, and
 * the load generators' answer checks. Skipped, with the reason, where the real server cannot run here
 * (as test/integration/real-triton.test.ts is).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { buildBenchRepository } from "../../bench/client.js";
import { startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { repoRoot } from "../support/testdata.js";

const run = promisify(execFile);
const CLI = join(repoRoot, "dist/src/cli/main.js");
const LOAD_JS = join(repoRoot, "dist/bench/client-load.js");
const LOAD_PY = join(repoRoot, "bench/tritonclient_load.py");
const PYTHON = existsSync(join(repoRoot, ".venv/bin/python3")) ? join(repoRoot, ".venv/bin/python3") : "python3";

test("bench client's repository: python-backend echo and yolo-sized models, 2 CPU instances each", () => {
  const dir = mkdtempSync(join(tmpdir(), "vasdk-bench-client-"));
  try {
    assert.deepEqual(buildBenchRepository(dir), ["echo_320", "echo_640", "echo_960", "yolo_out_640"]);
    const yolo = readFileSync(join(dir, "yolo_out_640/config.pbtxt"), "utf8");
    assert.match(yolo, /backend: "python"/);
    assert.match(yolo, /max_batch_size: 0/);
    assert.match(yolo, /name: "INPUT__0" data_type: TYPE_UINT8 dims: \[ 1, 640, 640, 3 \]/);
    assert.match(yolo, /name: "OUTPUT__0" data_type: TYPE_FP32 dims: \[ 1, 84, 8400 \]/);
    assert.match(yolo, /count: 2 kind: KIND_CPU/);
    assert.ok(existsSync(join(dir, "echo_960/1/model.py")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

let server: RealTriton | undefined;
let skip: string | false = false;
let startError: Error | undefined;
try {
  const r = await startRealTriton({ http: true, build: buildBenchRepository });
  if (r.skip !== undefined) skip = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
} catch (e) {
  startError = e as Error;
  skip = "the real tritonserver did not start (see the failing test 'bench client: real tritonserver starts')";
}
if (skip && !startError) console.log(`# bench client tests skipped: ${skip}`);
after(async () => {
  await server?.stop();
});

test("bench client: real tritonserver starts", { skip: !startError && skip }, () => {
  if (startError) throw startError;
});

interface Side {
  req_per_s: number;
  cpu_ms_per_req: number;
  output_check: string;
  outputs_checked: number;
  runs: Array<{ requests: number; cpu_s: number; output_bytes: number[] }>;
}

test("bench client: SDK and tritonclient lines for echo_320, C=1, gRPC", { skip, timeout: 180_000 }, async (t) => {
  const args = [CLI, "bench", "client", "--url", server!.address, "--http-url", server!.httpAddress!, "--python", PYTHON,
    "--payloads", "320", "--concurrency", "1", "--duration", "0.5", "--repeats", "1", "--transports", "grpc", "--json"];
  const { stdout } = await run(process.execPath, args, { maxBuffer: 16 << 20, timeout: 170_000 });
  const r = JSON.parse(stdout.trim().split("\n").pop()!) as {
    benchmark: string; pass: boolean; server: { version: string }; python: { unavailable: Record<string, string> };
    rows: Array<{ payload: string; concurrency: number; transport: string; sdk: Side | null; tritonclient: Side | null; ratio: { median: number } | null; errors?: unknown }>;
  };
  assert.equal(r.benchmark, "client");
  assert.match(r.server.version, /2\.\d+/);
  assert.equal(r.rows.length, 1);
  const row = r.rows[0]!;
  assert.deepEqual([row.payload, row.concurrency, row.transport], ["320", 1, "grpc"]);
  const positive = (who: string, s: Side | null) => {
    assert.ok(s, `no ${who} line: ${JSON.stringify(row.errors)}`);
    assert.ok(s.req_per_s > 0, `${who} req/s ${s.req_per_s}`);
    assert.ok(s.cpu_ms_per_req > 0 && s.runs[0]!.cpu_s > 0, `${who} cpu ${s.cpu_ms_per_req} ms/req`);
    // Every answer's size was checked (an echo's first answer's contents too), warm-up answers included.
    assert.equal(s.output_check, "ok");
    assert.deepEqual(s.runs[0]!.output_bytes, [320 * 320 * 3]);
    assert.ok(s.outputs_checked > s.runs[0]!.requests, `${who} checked ${s.outputs_checked} answers of ${s.runs[0]!.requests}`);
  };
  positive("SDK", row.sdk);
  if (r.python.unavailable.grpc) {
    t.skip(`tritonclient's gRPC client is not usable with ${PYTHON}: ${r.python.unavailable.grpc} (pip install -r requirements-dev.txt)`);
    return;
  }
  positive("tritonclient", row.tritonclient);
  assert.ok(row.ratio && row.ratio.median > 0);
  assert.equal(r.pass, true);
});

/** One load configuration whose expected output is the wrong size for echo_320. */
function wrongSize(protocol: "grpc" | "http", shm: "none" | "system") {
  return JSON.stringify({
    url: protocol === "grpc" ? server!.address : server!.httpAddress, protocol, shm, model: "echo_320", concurrency: 1, duration: 0.2, warmup: 1,
    input: { name: "INPUT__0", datatype: "UINT8", shape: [1, 320, 320, 3] },
    // echo_320 answers 307200 bytes; this asks for 320*320*4.
    outputs: [{ name: "OUTPUT__0", datatype: "UINT8", shape: [1, 320, 320, 4] }],
  });
}

test("bench client's load generators fail a run whose answers have the wrong size", { skip, timeout: 120_000 }, async (t) => {
  for (const shm of ["none", "system"] as const) {
    const sdk = await run(process.execPath, [LOAD_JS, wrongSize("grpc", shm)]).then(() => undefined, (e: { code: number; stdout: string }) => e);
    assert.ok(sdk, `the SDK's load generator (shm ${shm}) accepted wrong answers`);
    assert.equal(sdk.code, 1);
    assert.match(sdk.stdout, /"error":"[^"]*(bytes|byteSize|size)/i);
  }
  const probe = await run(PYTHON, ["-c", "import tritonclient.grpc"]).then(() => "", (e: Error) => e.message);
  if (probe) {
    t.skip(`tritonclient is not usable with ${PYTHON}: ${probe}`);
    return;
  }
  const py = await run(PYTHON, [LOAD_PY, wrongSize("grpc", "none")]).then(() => undefined, (e: { code: number; stdout: string }) => e);
  assert.ok(py, "tritonclient_load.py accepted wrong answers");
  assert.equal(py.code, 1);
  assert.match(py.stdout, /"error": "[^"]*307200 bytes, expected 409600/);
});
