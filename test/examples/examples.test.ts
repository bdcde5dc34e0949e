// The examples run as a user runs them: compiled, as child processes, from the repository root.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { repoRoot } from "../support/testdata.js";
import { filesUnder, tempDir } from "../pipeline/support.js";

const run = promisify(execFile);
const tmp = tempDir("va-examples-");
const dist = join(repoRoot, "dist", "examples");
let video: string;

before(async () => {
  video = join(tmp.dir, "demo.mp4");
  const { stdout } = await run("bash", [join(repoRoot, "examples", "make-demo-video.sh"), video], { cwd: repoRoot });
  assert.equal(stdout.trim(), video);
});
after(() => tmp.cleanup());

test("make-demo-video.sh: the 10 s H.264 demo video of the README's first command, under 300 KB", async () => {
  assert.ok(existsSync(video) && statSync(video).size > 10_000 && statSync(video).size < 300_000);
  const committed = join(repoRoot, "examples", "data", "demo.mp4");
  assert.ok(existsSync(committed) && statSync(committed).size < 300_000, "examples/data/demo.mp4 is committed");
});

test("process-video: runs the demo video, writes the run folder, then single-frame calls", async () => {
  const out = join(tmp.dir, "run");
  const { stdout } = await run("node", [join(dist, "process-video.js"), video, "profiles/embedded_cpu.yaml", out], { cwd: repoRoot });
  assert.match(stdout, /^10 frames analysed at 640x360 -> /m);
  assert.match(stdout, /core_object_detections: yolo11n_640 \(10 calls/);
  assert.match(stdout, /^frame 0: depth 512x512, scene "[^"]+", \d+ detections, best prompt "[^"]+"$/m);
  assert.equal(filesUnder(out).length, 7); // 5 artifacts, manifest.json, report.html
});

test("embed-pipeline: frames in, one JSON line per frame out, stopped by its AbortSignal", async () => {
  const { stdout } = await run("node", [join(dist, "embed-pipeline.js")], { cwd: repoRoot });
  const lines = stdout.trim().split("\n");
  assert.equal(lines.at(-1), "stopped by the signal");
  const results = lines.slice(0, -1).map((l) => JSON.parse(l) as { frame: number; mean_flow: number | null; scene: string });
  assert.ok(results.length >= 3 && results.length < 100, `${results.length} results`);
  assert.deepEqual(results.map((r) => r.frame), results.map((_, i) => i));
  assert.equal(results[0]!.mean_flow, null);
  assert.ok(results.slice(1).every((r) => typeof r.mean_flow === "number" && typeof r.scene === "string"));
});
