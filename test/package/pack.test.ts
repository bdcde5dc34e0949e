/**
 * The SDK as its users get it: `npm pack`, then the tarball installed with npm (from the npm cache
 * where it can: --prefer-offline) into fresh projects in a temporary folder, far from this checkout and
 * from ../shared:
 * - an ESM TypeScript project of an embedded user (the SDK, then onnxruntime-node as the README says),
 *   type-checked with `tsc --strict` and no skipLibCheck, that runs a whole video with the shipped
 *   embedded profile, process() on frames, mm.detect() with the real YOLO, and TritonClient against the
 *   real tritonserver; the CLI from the package too;
 * - a CommonJS project of a Triton-only user (no onnxruntime-node), installed with --ignore-scripts (as
 *   npm's install-script approval will do): require() of the SDK, TritonClient, the coded error of the
 *   embedded backend, the shared-memory addon missing and then built with the command the SDK names.
 * The install size of each kind of user is printed (`# install size ...`).
 */
import assert from "node:assert/strict";
import { execFile, type ExecFileOptions } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { committedModels, startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  name: string; version: string; devDependencies: Record<string, string>; peerDependencies: Record<string, string>;
};
const TSC = join(repoRoot, "node_modules/typescript/bin/tsc");
const VIDEO = join(repoRoot, "examples/data/demo.mp4");
const skipData = skipUnlessTestdata("models/yolo11n_int8_640.onnx") || skipUnlessTestdata("images/bus.jpg");
const TRITON_MODEL = "preprocess_midas_256";

/**
 * The installs need the npm registry, or an npm cache that holds every dependency (`--prefer-offline`):
 * without either, they are skipped with the reason (as the real tritonserver's tests are).
 */
const registrySkip: string | false = await run("npm", ["view", "--prefer-offline", "zod@" + "^4", "version"], { timeout: 60_000 }).then(
  () => false,
  (e: Error) => `the npm registry is unreachable and the npm cache cannot answer for it (${e.message.split("\n")[0]})`,
);
if (registrySkip) console.log(`# package install tests skipped: ${registrySkip}`);

const work = mkdtempSync(join(tmpdir(), "vasdk-pack-"));
const esm = join(work, "esm-app");
const cjs = join(work, "cjs-app");
let tarball = "";
let server: RealTriton | undefined;
let tritonSkip: string | false = false;

/** Runs a command; on failure, the error carries its output. */
async function sh(cmd: string, args: string[], options: ExecFileOptions = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    const r = await run(cmd, args, { maxBuffer: 64 << 20, timeout: 300_000, encoding: "utf8", ...options });
    return { stdout: String(r.stdout), stderr: String(r.stderr) };
  } catch (e) {
    const x = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${x.message}\n${x.stdout ?? ""}\n${x.stderr ?? ""}`);
  }
}

/** npm with no environment of this test run (npm_config_* of an outer `npm test` would leak in). */
function npm(cwd: string, args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== "ONNXRUNTIME_NODE_INSTALL"));
  return sh("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], { cwd, env });
}

function duBytes(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((s, f) => s + duBytes(join(path, f)), 0);
}

const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

before(async () => {
  const packed = await sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: repoRoot });
  tarball = join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
  const r = await startRealTriton({
    http: true,
    build: committedModels(TRITON_MODEL),
  });
  if (r.skip !== undefined) tritonSkip = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
});

after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("the tarball holds what the package needs (licences, vocabulary, profiles and what they use), not the tests", async () => {
  const files = new Set((await sh("tar", ["-tzf", tarball])).stdout.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, "")));
  for (const f of ["LICENSE", "NOTICE", "README.md", "package.json", "assets/clip/bpe_simple_vocab_16e6.txt.gz", "profiles/embedded_cpu.yaml", "models/contract/yolo11n_640.onnx", "dist/src/index.d.ts", "scripts/build-native.mjs", "native/shm.c", "proto/grpc_service.proto"]) {
    assert.ok(files.has(f), `${f} is in the package`);
  }
  assert.equal([...files].filter((f) => f.startsWith("dist/test/") || f.startsWith("test/") || f.endsWith(".ts") && !f.endsWith(".d.ts")).length, 0);
  // Source maps carry their sources (src/ is not shipped).
  const map = JSON.parse((await sh("tar", ["-xzOf", tarball, "package/dist/src/index.js.map"])).stdout) as { sourcesContent?: string[] };
  assert.ok(map.sourcesContent?.[0]?.includes("export"), "index.js.map has its sources inline");
  // Where the project lives, for npm's page and `npm bugs`/`npm home`.
  const pkg = JSON.parse((await sh("tar", ["-xzOf", tarball, "package/package.json"])).stdout) as { repository?: { url?: string }; homepage?: string; bugs?: { url?: string } };
  assert.match(pkg.repository?.url ?? "", /^git\+https:\/\/github\.com\/[\w-]+\/[\w-]+\.git$/);
  const home = pkg.repository!.url!.replace(/^git\+/, "").replace(/\.git$/, "");
  assert.equal(pkg.homepage, `${home}#readme`);
  assert.equal(pkg.bugs?.url, `${home}/issues`);
});

const ESM_CONSUMER = `
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  ModelManager, TritonClient, VideoAnalysisError, readImageRgb, letterbox, unletterboxBoxes, COCO80_NAMES,
  type RgbFrame, type FrameResult, type DetectionRecord, type ProfileInput,
} from "video-analysis-sdk";

// Object profiles are typed: a misspelt key is a compile error.
const analysis: ProfileInput["analysis"] = { fps: 1, max_side: 640 };
// @ts-expect-error fsp is not a key of analysis
const misspelt: ProfileInput["analysis"] = { fsp: 1 };
void analysis;
void misspelt;

const [video, out, yolo640, yolo320, bus, triton] = process.argv.slice(2) as [string, string, string, string, string, string];
const profile = fileURLToPath(import.meta.resolve("video-analysis-sdk/profiles/embedded_cpu.yaml"));
const version: string = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("video-analysis-sdk/package.json")), "utf8")).version;
const report: Record<string, unknown> = { version };

// A whole video with the shipped profile (contract models, shipped CLIP vocabulary).
const mm = await ModelManager.fromProfile(profile);
const r = await mm.run(video, { out });
report.run = { frames: r.manifest.analysis.frames, artifacts: r.manifest.artifacts.map((a) => a.path).sort() };

// process() on frames from elsewhere.
const frames: RgbFrame[] = [0, 1, 2].map((i) => ({ width: 96, height: 64, data: new Uint8Array(96 * 64 * 3).fill(40 * i) }));
const results: FrameResult[] = [];
for await (const f of mm.process(frames)) results.push(f);
report.process = results.map((f) => ({ index: f.index, depth: f.depth !== undefined, flow: f.flow !== undefined, detections: f.detections !== undefined }));
await mm.close();

// mm.detect() with a real YOLO11n, named with the model's classes.
const det = await ModelManager.fromProfile(profile, {
  overrides: {
    backend: { embedded: { models: { yolo11n_640: yolo640, yolo11n_320: yolo320 } } },
    components: { core_depth_midas: { enabled: false }, core_optical_flow: { enabled: false }, core_clip: { enabled: false }, scene: { enabled: false } },
  },
});
const image = await readImageRgb(bus);
const records: DetectionRecord[] = (await det.detect(image)).toRecords();
report.detect = records.map((d) => ({ className: d.className, score: d.score }));
await det.close();

// Building blocks: letterbox and back.
const lb = letterbox(image, 640);
const box = Float32Array.of(lb.info.left, lb.info.top, 640 - lb.info.right, 640 - lb.info.bottom);
unletterboxBoxes(box, lb.info);
report.letterbox = { box: Array.from(box, Math.round), coco: COCO80_NAMES.length };

// TritonClient against the real tritonserver; a refused request keeps the server's words.
if (triton) {
  const client = await TritonClient.create({ url: triton });
  const pixels = new Uint8Array(256 * 256 * 3).fill(128);
  const res = await client.infer("${TRITON_MODEL}", [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 256, 256, 3], data: pixels }]);
  const o = Object.values(res.outputs)[0]!;
  let refused = "";
  try {
    await client.infer("no_such_model", [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 256, 256, 3], data: pixels }]);
  } catch (e) {
    refused = e instanceof VideoAnalysisError ? \`\${e.code} \${e.message}\` : String(e);
  }
  report.triton = { ready: await client.serverReady(), shape: o.shape, refused };
  await client.close();
}
console.log(JSON.stringify(report));
`;

const CJS_CONSUMER = `
const sdk = require("video-analysis-sdk");
const { TritonClient, EmbeddedBackend, SystemSharedMemory, VideoAnalysisError } = sdk;
(async () => {
  const report = { exports: Object.keys(sdk).length, shm: SystemSharedMemory.nativeStatus() };
  try {
    await EmbeddedBackend.create({ models: {} });
    report.embedded = "created";
  } catch (e) {
    report.embedded = e instanceof VideoAnalysisError ? e.code + " " + e.message : String(e);
  }
  const url = process.argv[2];
  if (url) {
    const client = await TritonClient.create({ url, protocol: "http" });
    const res = await client.infer("${TRITON_MODEL}", [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 256, 256, 3], data: new Uint8Array(256 * 256 * 3) }]);
    report.triton = Object.values(res.outputs)[0].shape;
    await client.close();
  }
  console.log(JSON.stringify(report));
})().catch((e) => { console.error(e); process.exit(1); });
`;

test("ESM TypeScript project of an embedded user: install, tsc --strict, a video, process(), detect() with names, Triton", { skip: registrySkip || skipData, timeout: 600_000 }, async () => {
  // The README's "Install as a dependency" commands are the ones run here.
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Install as a dependency"), readme.indexOf("## What `main` does"));
  assert.match(section, /^npm install video-analysis-sdk\s/m);
  assert.match(section, /^npm install onnxruntime-node --ignore-scripts\s/m);
  assert.match(section, /^npx video-analysis main --video in\.mp4 --profile node_modules\/video-analysis-sdk\/profiles\/embedded_cpu\.yaml --out runs\/in$/m);
  mkdirSync(esm, { recursive: true });
  writeFileSync(join(esm, "package.json"), JSON.stringify({ name: "esm-app", private: true, type: "module" }, null, 2));
  // The README's two steps: the SDK, then onnxruntime-node without its install script (CUDA download).
  await npm(esm, ["install", tarball, `@types/node@${pkg.devDependencies["@types/node"]}`]);
  const before = duBytes(join(esm, "node_modules")) - duBytes(join(esm, "node_modules/@types"));
  await npm(esm, ["install", "--ignore-scripts", `onnxruntime-node@${pkg.peerDependencies["onnxruntime-node"]}`]);
  const embeddedSize = duBytes(join(esm, "node_modules")) - duBytes(join(esm, "node_modules/@types"));
  console.log(`# install size: Triton-only ${mb(before)}, embedded (with onnxruntime-node) ${mb(embeddedSize)}`);
  assert.ok(existsSync(join(esm, "node_modules/video-analysis-sdk/dist/native/shm.node")), "the install script built the shared-memory addon");

  writeFileSync(join(esm, "consumer.ts"), ESM_CONSUMER);
  writeFileSync(
    join(esm, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { strict: true, skipLibCheck: false, module: "nodenext", moduleResolution: "nodenext", target: "es2022", types: ["node"], outDir: "out" }, files: ["consumer.ts"] }),
  );
  await sh(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: esm });

  const out = await sh(
    process.execPath,
    ["out/consumer.js", VIDEO, join(esm, "runs/demo"), testdata("models/yolo11n_int8_640.onnx"), testdata("models/yolo11n_int8_320.onnx"), testdata("images/bus.jpg"), server?.address ?? ""],
    { cwd: esm },
  );
  const report = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as {
    version: string;
    run: { frames: number; artifacts: string[] };
    process: Array<{ index: number; depth: boolean; flow: boolean; detections: boolean }>;
    detect: Array<{ className: string; score: number }>;
    letterbox: { box: number[]; coco: number };
    triton?: { ready: boolean; shape: number[]; refused: string };
  };
  assert.equal(report.version, pkg.version);
  assert.equal(report.run.frames, 10, "demo.mp4 is 10 s at the profile's 1 fps");
  assert.deepEqual(report.run.artifacts, ["core_clip/embeddings.npz", "core_depth_midas/depth.npz", "core_object_detections/detections.npz", "core_optical_flow/flow.npz", "scene/places.npz"]);
  assert.deepEqual(report.process.map((p) => [p.index, p.depth, p.flow, p.detections]), [[0, true, false, true], [1, true, true, true], [2, true, true, true]]);
  const names = report.detect.map((d) => d.className);
  assert.ok(names.includes("bus"), `detect() named the bus: ${names.join(", ")}`);
  assert.ok(names.filter((n) => n === "person").length >= 3, `detect() found the people: ${names.join(", ")}`);
  assert.deepEqual(report.letterbox, { box: [0, 0, 810, 1080], coco: 80 });
  if (server) {
    assert.deepEqual(report.triton!.ready, true);
    assert.deepEqual(report.triton!.shape, [1, 3, 256, 256]);
    assert.match(report.triton!.refused, /^(NOT_FOUND|UNAVAILABLE|INVALID_ARGUMENT) .*no_such_model/);
  } else {
    console.log(`# TritonClient part not run: ${tritonSkip}`);
  }

  // The CLI from the package, in a folder with no ../shared: the README's first command.
  cpSync(VIDEO, join(esm, "in.mp4"));
  const cli = await sh("npx", ["video-analysis", "main", "--video", "in.mp4", "--profile", "node_modules/video-analysis-sdk/profiles/embedded_cpu.yaml", "--out", "runs/in", "--quiet"], { cwd: esm });
  assert.ok(existsSync(join(esm, "runs/in/manifest.json")), cli.stdout + cli.stderr);
  const version = await sh(join(esm, "node_modules/.bin/video-analysis"), ["--version"], { cwd: esm });
  assert.equal(version.stdout.trim(), pkg.version);
  // bench needs the checkout's bench/ and test support: the package does not offer it.
  const help = await sh(join(esm, "node_modules/.bin/video-analysis"), ["--help"], { cwd: esm });
  assert.doesNotMatch(help.stdout, /^ {2}bench /m);
  const bench = await sh("bash", ["-c", `"${join(esm, "node_modules/.bin/video-analysis")}" bench client; echo "status=$?"`], { cwd: esm });
  assert.match(bench.stdout, /status=2/);
  assert.match(bench.stderr, /bench runs from a checkout of the repository/);
});

test("CommonJS project of a Triton-only user, installed with --ignore-scripts: require(), TritonClient, the embedded backend's coded error, the addon built on demand", { skip: registrySkip, timeout: 600_000 }, async () => {
  mkdirSync(cjs, { recursive: true });
  writeFileSync(join(cjs, "package.json"), JSON.stringify({ name: "cjs-app", private: true }, null, 2));
  await npm(cjs, ["install", "--ignore-scripts", tarball]);
  assert.equal(existsSync(join(cjs, "node_modules/onnxruntime-node")), false, "onnxruntime-node is an optional peer: not installed for Triton users");
  writeFileSync(join(cjs, "consumer.cjs"), CJS_CONSUMER);
  const url = server?.httpAddress ?? "";
  const first = JSON.parse((await sh(process.execPath, ["consumer.cjs", url], { cwd: cjs })).stdout) as {
    exports: number; shm: { mapped: boolean; reason?: string }; embedded: string; triton?: number[];
  };
  assert.ok(first.exports > 40);
  assert.match(first.embedded, /^FAILED_PRECONDITION .*npm install onnxruntime-node --ignore-scripts/);
  if (server) assert.deepEqual(first.triton, [1, 3, 256, 256]);
  // No install script ran: the addon is missing, and the SDK names the command that builds it.
  assert.equal(first.shm.mapped, false);
  const build = /build it with "node ([^"]+)"/.exec(first.shm.reason ?? "");
  assert.ok(build, first.shm.reason);
  await sh(process.execPath, [build![1]!], { cwd: cjs });
  const second = JSON.parse((await sh(process.execPath, ["consumer.cjs"], { cwd: cjs })).stdout) as { shm: { mapped: boolean } };
  assert.equal(second.shm.mapped, true);
  console.log(`# install size: Triton-only (CommonJS, --ignore-scripts) ${mb(duBytes(join(cjs, "node_modules")))}`);
});
