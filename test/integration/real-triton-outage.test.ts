/**
 * Runs that ride through server trouble, against NVIDIA's real tritonserver (started and killed here):
 * a crash and restart mid-run, a model unloaded and loaded again mid-run, and a server gone for longer
 * than the outage budget. The interrupted runs' artifacts must equal an undisturbed run's, array for array.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { VideoAnalysisError } from "../../src/errors.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import type { Progress } from "../../src/pipeline/progress.js";
import { startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { repoRoot } from "../support/testdata.js";
import { JOURNAL_FILE } from "../../src/pipeline/journal.js";

const PROFILE = join(repoRoot, "profiles/baseline_gpu_yolo.yaml");
const VIDEO = join(repoRoot, "examples/data/demo.mp4");

let server: RealTriton | undefined;
let skip: string | false = false;
const r = await startRealTriton();
if (r.skip !== undefined) skip = `real tritonserver not run: ${r.skip}`;
else server = r.server;

const dir = mkdtempSync(join(tmpdir(), "vasdk-outage-"));
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const overrides = (budgetS: number) => ({ backend: { triton: { url: server!.address, outage_budget_s: budgetS, retries: 1 } } });

/** Every array of every .npz of a run folder, as numpy sees them (name -> sha256 of dtype, shape and bytes). */
function arrays(runDir: string): Record<string, string> {
  const py = `
import hashlib, json, os, sys, numpy as np
out = {}
for root, _, files in os.walk(sys.argv[1]):
    for f in sorted(files):
        if f.endswith(".npz"):
            z = np.load(os.path.join(root, f))
            for k in z.files:
                a = z[k]
                out[os.path.relpath(os.path.join(root, f), sys.argv[1]) + ":" + k] = hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes()).hexdigest()
print(json.dumps(out))`;
  // The Python the test tools were installed into (scripts/setup.sh): the project's .venv where it made one.
  const python = existsSync(join(repoRoot, ".venv/bin/python3")) ? join(repoRoot, ".venv/bin/python3") : "python3";
  return JSON.parse(execFileSync(python, ["-c", py, runDir], { encoding: "utf8" }));
}

async function run(name: string, budgetS: number, onProgress?: (p: Progress) => void, keep = true) {
  const mm = await ModelManager.fromProfile(PROFILE, { overrides: overrides(budgetS) });
  try {
    return await mm.run(VIDEO, { out: join(dir, name), keep, ...(onProgress ? { onProgress } : {}) });
  } finally {
    await mm.close();
  }
}

let clean: Record<string, string> | undefined;
const reference = async () => (clean ??= arrays((await run("clean", 0)).out));

test("the server killed (SIGKILL) mid-run and started again: the run completes, artifacts equal an undisturbed run's", { skip, timeout: 300_000 }, async (t) => {
  const want = await reference();
  const waits: string[] = [];
  let restarted: Promise<void> | undefined;
  const res = await run("crash", 120, (p) => {
    if (p.waiting) waits.push(p.waiting);
    if (p.frames === 5 && !restarted) restarted = server!.kill("SIGKILL").then(() => server!.start());
  });
  await restarted;
  assert.deepEqual(arrays(res.out), want);
  assert.equal(res.manifest.outages.length, 1, JSON.stringify(res.manifest.outages));
  const o = res.manifest.outages[0]!;
  assert.equal(o.recovered, true);
  assert.ok(o.calls_retried >= 1 && o.seconds > 0, JSON.stringify(o));
  assert.ok(waits.some((w) => /^waiting for triton at 127\.0\.0\.1:\d+: .+ \(\d+ s of 120 s\)$/.test(w)), `progress said: ${waits.slice(0, 3).join(" | ")}`);
  t.diagnostic(`progress while waiting: ${waits.at(-1)}; outage ${o.seconds} s, ${o.calls_retried} calls retried`);
});

test("one model unloaded and loaded again mid-run: the run waits for it and completes with the same artifacts", { skip, timeout: 300_000 }, async () => {
  const want = await reference();
  const { TritonClient } = await import("../../src/triton/client.js");
  const admin = await TritonClient.create({ url: server!.address });
  let reloaded: Promise<void> | undefined;
  try {
    const res = await run("reload", 120, (p) => {
      if (p.frames === 4 && !reloaded) {
        const model = "yolo11x_640";
        reloaded = admin.unloadModel(model).then(() => new Promise((r) => setTimeout(r, 1500))).then(() => admin.loadModel(model));
      }
    });
    await reloaded;
    assert.deepEqual(arrays(res.out), want);
    assert.ok(res.manifest.outages.every((o) => o.recovered));
  } finally {
    await admin.close();
  }
});

test("a server gone for longer than the budget: UNAVAILABLE saying how long it waited and for what; with keep: false nothing left behind", { skip, timeout: 300_000 }, async () => {
  let killed: Promise<void> | undefined;
  const t0 = performance.now();
  await assert.rejects(
    run(
      "gone",
      3,
      (p) => {
        if (p.frames === 3 && !killed) killed = server!.kill("SIGKILL");
      },
      false,
    ),
    (e: unknown) => {
      assert.ok(e instanceof VideoAnalysisError, String(e));
      assert.equal(e.code, "UNAVAILABLE");
      assert.match(e.message, /did not come back within the outage budget of 3 s \(backend\.triton\.outage_budget_s\)/);
      return true;
    },
  );
  await killed;
  assert.ok(performance.now() - t0 < 60_000);
  assert.equal(existsSync(join(dir, "gone")), false, "the failed run left its folder");
  await server!.start();
});

test("a server gone longer than the budget, on the CLI: exit 1 with the frames done and the exact --resume command; that command, once the server is back, completes array-equal", { skip, timeout: 300_000 }, async (t) => {
  const want = await reference();
  // The profile with a 3 s budget and a commit after every frame (the CLI reads a file).
  const profile = join(dir, "budget.yaml");
  writeFileSync(profile, readFileSync(PROFILE, "utf8").replace("    retries: 2", "    retries: 1\n    outage_budget_s: 3").replace(/^output:\n/m, "output:\n  commit_interval_s: 0\n"));
  const out = join(dir, "resumed");
  const cli = join(repoRoot, "dist/src/cli/main.js");
  const env = { ...process.env, TRITON_GRPC_URL: server!.address };
  const args = ["main", "--video", VIDEO, "--profile", profile, "--out", out, "--quiet"];
  const committed = () => {
    try {
      return (JSON.parse(readFileSync(join(out, JOURNAL_FILE), "utf8")) as { frames: number }).frames;
    } catch {
      return 0;
    }
  };
  let killed: Promise<void> | undefined;
  const first = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn("node", [cli, ...args], { cwd: repoRoot, env });
    let stderr = "";
    c.stderr.on("data", (x: Buffer) => (stderr += x.toString()));
    const poll = setInterval(() => {
      if (!killed && committed() >= 5) killed = server!.kill("SIGKILL");
    }, 10);
    c.on("close", (code) => {
      clearInterval(poll);
      resolve({ code, stderr });
    });
  });
  await killed;
  assert.equal(first.code, 1, first.stderr);
  const n = committed();
  assert.match(first.stderr, new RegExp(`\\[UNAVAILABLE\\] .*outage budget of 3 s.*; the run stopped after \\d+ frames; ${n} frames committed in ${out} are kept: run the same command with --resume`));
  const line = /^resume with: (.*)$/m.exec(first.stderr)?.[1];
  assert.equal(line, ["video-analysis", ...args, "--resume"].join(" "));
  assert.equal(existsSync(join(out, "manifest.json")), false);

  await server!.start();
  const again = line!.split(" ").slice(1);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => execFile("node", [cli, ...again], { cwd: repoRoot, env: { ...env, TRITON_GRPC_URL: server!.address } }, (e, _o, stderr) => (e ? reject(new Error(stderr)) : resolve())));
  assert.deepEqual(arrays(out), want);
  const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.equal(m.interruptions.length, 1);
  assert.equal(m.interruptions[0].frames_committed, n);
  assert.match(m.interruptions[0].reason, /^UNAVAILABLE: /);
  t.diagnostic(`stopped with ${n} frames committed; --resume took ${Math.round(performance.now() - t0)} ms; ${first.stderr.trim().split("\n").at(-2)}`);
});
