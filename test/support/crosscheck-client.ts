#!/usr/bin/env node
/**
 * The TypeScript half of the cross-check with NVIDIA's tritonclient (test/python/test_tritonclient_crosscheck.py):
 * runs the given inference cases through the SDK's TritonClient and prints what came back, so the Python
 * test can compare it byte for byte with what tritonclient got from the same calls.
 *
 *   node dist/test/support/crosscheck-client.js <address> <cases.json>
 *
 * cases.json: {"cases": [{"id", "model", "inputs": [{"name", "datatype", "shape", "raw_b64"}],
 *              "outputs"?: [names], "parameters"?: {name: value}}]}
 * stdout (one JSON object): {"results": {<id>: {"outputs": {<name>: {"datatype", "shape", "raw_b64"}}}
 *                                             | {"error": {"code", "message"}}}}
 * raw_b64 is Triton's raw encoding of the tensor (little-endian; BYTES with 4-byte length prefixes).
 */
import { readFileSync } from "node:fs";
import { isVideoAnalysisError } from "../../src/errors.js";
import { fromRaw, isDataType, toRaw, type Tensor } from "../../src/tensor.js";
import { TritonClient } from "../../src/triton/client.js";

interface Case {
  id: string;
  model: string;
  inputs: { name: string; datatype: string; shape: number[]; raw_b64: string }[];
  outputs?: string[];
  parameters?: Record<string, string | number | boolean>;
}

const [address, casesPath] = process.argv.slice(2);
if (!address || !casesPath) {
  console.error("usage: crosscheck-client <address> <cases.json>");
  process.exit(2);
}
const { cases } = JSON.parse(readFileSync(casesPath, "utf8")) as { cases: Case[] };

const client = await TritonClient.create({ url: address, retry: { maxAttempts: 1 } });
const results: Record<string, unknown> = {};
try {
  for (const c of cases) {
    const inputs = c.inputs.map((i): Tensor => {
      if (!isDataType(i.datatype)) throw new TypeError(`case ${c.id}: unknown datatype ${i.datatype}`);
      return { name: i.name, datatype: i.datatype, shape: i.shape, data: fromRaw(i.datatype, i.shape, Buffer.from(i.raw_b64, "base64"), i.name) } as Tensor;
    });
    try {
      const r = await client.infer(c.model, inputs, {
        ...(c.outputs ? { outputs: c.outputs } : {}),
        ...(c.parameters ? { parameters: c.parameters } : {}),
      });
      const outputs: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(r.outputs)) {
        outputs[name] = { datatype: t.datatype, shape: t.shape, raw_b64: Buffer.from(toRaw(t)).toString("base64") };
      }
      results[c.id] = { outputs };
    } catch (e) {
      if (!isVideoAnalysisError(e)) throw e;
      results[c.id] = { error: { code: e.code, message: e.message } };
    }
  }
} finally {
  await client.close();
}
process.stdout.write(`${JSON.stringify({ results })}\n`);
