#!/usr/bin/env node
/**
 * Starts the test server with the models of test-models.ts, prints one JSON line
 * `{"address": "127.0.0.1:PORT"}` on stdout, and serves until SIGTERM/SIGINT, or until stdin closes when
 * stdin is a pipe (so a parent process that dies takes the server with it).
 *
 *   node dist/test/support/serve.js [--port N] [--host H]
 */
import { fstatSync } from "node:fs";
import { parseArgs } from "node:util";
import { testModels } from "./test-models.js";
import { TestServer } from "./test-server.js";

const { values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" } } });
const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: --port must be an integer in 0..65535, got ${values.port}`);
  process.exit(2);
}

const server = await TestServer.start({ models: testModels(), port, host: values.host });
process.stdout.write(`${JSON.stringify({ address: server.address })}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
const stdin = fstatSync(0);
if (stdin.isFIFO() || stdin.isSocket()) {
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}
