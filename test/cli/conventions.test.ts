/**
 * The CLI follows the conventions of command-line tools: `--version`; `<command> --help` with every
 * option described; usage errors on stderr with exit 2 and nothing on stdout; every failure one coded
 * line (no stack trace) for inputs that used to give one (fps above 1000, a URL as --video, an --out
 * that cannot be a folder); a reader that stops early (`| head -1`) is no error; `detect` on many images,
 * folders and globs; a 1-pixel-wide video runs.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

const CLI = join(repoRoot, "dist/src/cli/main.js");
const PROFILE = join(repoRoot, "profiles/embedded_cpu.yaml");
const VIDEO = join(repoRoot, "examples/data/demo.mp4");
const YOLO = testdata("models/yolo11n_int8_640.onnx");
const skipData = skipUnlessTestdata("models/yolo11n_int8_640.onnx") || skipUnlessTestdata("images/bus.jpg");
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
const dir = mkdtempSync(join(tmpdir(), "vasdk-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], options: { cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: "utf8", maxBuffer: 64 << 20, ...options }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One coded line on stderr, no stack trace. */
function assertCoded(stderr: string, code: string): void {
  assert.match(stderr, new RegExp(`^video-analysis: \\[${code}\\] `), stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, `no stack trace: ${stderr}`);
}

const COMMANDS = ["main", "batch", "enqueue", "worker", "queue", "bench", "route", "triton-repo", "smoke", "detect", "track", "render", "report"];

test("--version prints the package's version", async () => {
  for (const flag of ["--version", "-V"]) {
    const r = await cli([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), version);
  }
});

test("every command's --help lists every flag of its usage line with a description", async () => {
  const top = await cli(["--help"]);
  assert.equal(top.code, 0);
  for (const name of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${name} `, "m"), `${name} in the command list`);
  const bench = await cli(["bench", "--help"]);
  assert.equal(bench.code, 0);
  const benchmarks = [...bench.stdout.matchAll(/^ {2}([\w-]+) {2,}\S/gm)].map((m) => m[1]!);
  assert.deepEqual(benchmarks.sort(), ["client", "many", "models", "pipeline", "postprocess", "render", "tiers", "transport", "triton-main"]);
  const helps = [
    ...COMMANDS.filter((c) => c !== "bench").flatMap((name) => [[name, "--help"], [name, "-h"], ["help", name]]),
    ...benchmarks.map((b) => ["bench", b, "--help"]),
  ];
  for (const args of helps) {
    const name = args.filter((a) => a !== "--help" && a !== "-h" && a !== "help").join(" ");
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr, "");
    const [, usage = "", options = ""] = /usage: (.*)\n\noptions:\n([\s\S]*)/.exec(r.stdout) ?? [];
    assert.ok(options, `${name} --help has an options section:\n${r.stdout}`);
    const described = new Map<string, string>();
    for (const line of options.split("\n").filter(Boolean)) {
      // An empty description (a flag followed by nothing but spaces) fails here.
      const m = /^ {2}(?:-\w, )?--([\w-]+)(?: \S+)?\s{2,}(\S.*)$/.exec(line);
      assert.ok(m, `${name}: option line with a description: "${line}"`);
      assert.ok(m[2]!.trim().length >= 10, `${name}: --${m[1]} has a real description, not "${m[2]}"`);
      described.set(m[1]!, m[2]!);
    }
    for (const flag of usage.matchAll(/--([\w-]+)/g)) assert.ok(described.has(flag[1]!), `${name}: --${flag[1]} of the usage line is described`);
  }
});

test("usage errors: stderr, exit 2, nothing on stdout, for every command", async () => {
  const cases = [
    [],
    ["no-such-command"],
    ...COMMANDS.filter((c) => c !== "bench").map((c) => [c, "--no-such-flag"]),
    ["main", "--profile", PROFILE],
    ["main", "--video", VIDEO, "--profile", PROFILE, "--fps", "5000"],
    ["main", "--video", VIDEO, "--profile", PROFILE, "--fps"],
    ["detect", "--model", "m.onnx"],
    ["track", "--mot-det", "d.txt", "--out", "t.txt", "--variant", "rust"],
    ["bench", "no-such-bench"],
    ["render", "--out", "x.mp4"],
    ["render", "runs/x"],
    ["render", "runs/x", "--out", "x.mp4", "--layers", "boxes,nope"],
    ["render", "runs/x", "--out", "x.mp4", "--crf", "99"],
    ["report"],
    ["report", "runs/x", "--quality", "1.5"],
    ["batch", "--out", "runs", "v.mp4"],
    ["batch", "--profile", PROFILE, "--out", "runs"],
    ["batch", "--profile", PROFILE, "--out", "runs", "--jobs", "0", "v.mp4"],
    ["enqueue", "--profile", PROFILE, "v.mp4"],
    ["enqueue", "--profile", PROFILE, "--out", "runs", "--retries", "-1", "v.mp4"],
    // worker has no required flag: a bad value is its usage error (before any connection to Redis).
    ["worker", "--concurrency", "0"],
    ["queue"],
    ["queue", "stat"],
    ["queue", "status", "--no-such-flag"],
  ];
  for (const args of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
    assert.equal(r.stdout, "", `${args.join(" ")} writes nothing on stdout`);
    assert.match(r.stderr, /^video-analysis[ :]/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test("bad inputs give one coded line: a URL as --video, fps above 1000 in a profile, an --out that cannot be a folder", async () => {
  const url = await cli(["main", "--video", "https://example.com/v.mp4", "--profile", PROFILE, "--out", join(dir, "url")]);
  assert.equal(url.code, 1);
  assertCoded(url.stderr, "INVALID_ARGUMENT");
  assert.match(url.stderr, /https:\/\/example\.com\/v\.mp4 is a https URL; .*download it first/);

  const fast = join(dir, "fast.yaml");
  writeFileSync(fast, readFileSync(PROFILE, "utf8").replace("fps: 1\n", "fps: 5000\n"));
  const f = await cli(["main", "--video", VIDEO, "--profile", fast, "--out", join(dir, "fast")]);
  assert.equal(f.code, 1);
  assertCoded(f.stderr, "PROFILE_INVALID");
  assert.match(f.stderr, /analysis\.fps/);

  const file = join(dir, "a-file");
  writeFileSync(file, "");
  const o = await cli(["main", "--video", VIDEO, "--profile", PROFILE, "--out", join(file, "run"), "--quiet"]);
  assert.equal(o.code, 1);
  assertCoded(o.stderr, "IO_ERROR");
  assert.match(o.stderr, /a-file\/run/);
  assert.match(o.stderr, /is a file, not a folder/);
});

test("an --out where no folder can be made (/proc/x) fails at once with a coded line, for main, batch and detect --save", { skip: existsSync("/proc/self") ? false : "no /proc here" }, async () => {
  // Node's mkdir({ recursive: true }) loops forever there (ENOENT under a folder that exists).
  const runs = [
    ["main", "--video", VIDEO, "--profile", PROFILE, "--out", "/proc/x/run", "--quiet"],
    ["batch", "--profile", PROFILE, "--out", "/proc/x", VIDEO],
    ...(skipData ? [] : [["detect", "--model", YOLO, "--save", "/proc/x", testdata("images/bus.jpg")]]),
  ];
  for (const args of runs) {
    const t0 = Date.now();
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30_000 }, (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }));
    });
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assertCoded(r.stderr, "IO_ERROR");
    assert.match(r.stderr, /Cannot create the folder \/proc\/x: \/proc does not take new folders \(ENOENT\); choose a folder on a writable file system\./);
    assert.ok(Date.now() - t0 < 20_000, `${args[0]} took ${Date.now() - t0} ms`);
  }
});

test("a 1-pixel-wide video runs through main", async () => {
  const video = join(dir, "thin.mkv");
  const raw = Buffer.alloc(1 * 64 * 3 * 10, 90);
  execFileSync("ffmpeg", ["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "1x64", "-r", "5", "-i", "-", "-c:v", "ffv1", video], { input: raw });
  const r = await cli(["main", "--video", video, "--profile", PROFILE, "--out", join(dir, "thin"), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { frames: number; analysis: { width: number; height: number } };
  assert.equal(s.frames, 2);
  assert.deepEqual([s.analysis.width, s.analysis.height], [1, 64]);
});

test("detect: repeated --image, folders and globs, one JSON line per image", { skip: skipData }, async () => {
  const images = testdata("images");
  const folder = await cli(["detect", "--model", YOLO, "--json", images]);
  assert.equal(folder.code, 0, folder.stderr);
  const lines = folder.stdout.trim().split("\n").map((l) => JSON.parse(l) as { image: string; detections: Array<{ class_name: string }> });
  assert.equal(lines.length, 11, "every image of the folder");
  const bus = lines.find((l) => l.image.endsWith("bus.jpg"))!;
  assert.ok(bus.detections.some((d) => d.class_name === "bus"));

  const glob = await cli(["detect", "--model", YOLO, "--json", join(images, "*.png")]);
  assert.equal(glob.code, 0, glob.stderr);
  assert.deepEqual(glob.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { image: string }).image), [join(images, "clip_diagram.png")]);

  const two = await cli(["detect", "--model", YOLO, "--json", "--image", join(images, "bus.jpg"), "--image", join(images, "zidane.jpg")]);
  assert.deepEqual(two.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { image: string }).image), [join(images, "bus.jpg"), join(images, "zidane.jpg")]);

  const none = await cli(["detect", "--model", YOLO, join(images, "*.gif")]);
  assert.equal(none.code, 1);
  assertCoded(none.stderr, "NOT_FOUND");
});

test("detect ... | head -1: the reader stopping early is no error", { skip: skipData }, async () => {
  const errFile = join(dir, "epipe.err");
  const out = execFileSync("bash", ["-c", `set -o pipefail; "${process.execPath}" "${CLI}" detect --model "${YOLO}" "${testdata("images")}" 2>"${errFile}" | head -1; echo "status=$?"`], { encoding: "utf8" });
  assert.match(out, /^\S+\.(jpg|png) \d+x\d+ -> /);
  assert.match(out, /status=0\n$/, out);
  assert.equal(readFileSync(errFile, "utf8"), "");
});

test("docs/cli.md is the CLI's own --help output (node scripts/cli-docs.mjs regenerates it)", () => {
  const r = spawnSync(process.execPath, [join(repoRoot, "scripts/cli-docs.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

/** Every key of a JSON value that is not snake_case (camelCase, or capitals), with its path. */
function camelKeys(v: unknown, path = ""): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => camelKeys(x, `${path}[${i}]`));
  if (v === null || typeof v !== "object") return [];
  return Object.entries(v).flatMap(([k, x]) => [...(/[A-Z]/.test(k) ? [`${path}.${k}`] : []), ...camelKeys(x, `${path}.${k}`)]);
}

test("one naming rule: manifest.json, batch.json and the --json outputs have snake_case keys only", async () => {
  const out = join(dir, "snake");
  const main = await cli(["main", "--video", VIDEO, "--profile", PROFILE, "--out", out, "--max-frames", "2", "--json"]);
  assert.equal(main.code, 0, main.stderr);
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as { manifest_version: number; video: Record<string, unknown>; analysis: { decode: Record<string, unknown> } };
  assert.equal(manifest.manifest_version, 2);
  assert.deepEqual(camelKeys(manifest), []);
  assert.equal(typeof manifest.video.frame_rate, "number");
  assert.equal(typeof manifest.video.display_width, "number");
  assert.deepEqual(Object.keys(manifest.analysis.decode).sort(), ["mode", "planned_frames", "source_frames"]);
  assert.deepEqual(camelKeys(JSON.parse(main.stdout)), []);

  const batch = await cli(["batch", "--profile", PROFILE, "--out", join(dir, "snake-batch"), "--fps", "1", "--json", VIDEO]);
  assert.equal(batch.code, 0, batch.stderr);
  assert.deepEqual(camelKeys(JSON.parse(batch.stdout)), []);
  assert.deepEqual(camelKeys(JSON.parse(readFileSync(join(dir, "snake-batch", "batch.json"), "utf8"))), []);

  const route = await cli(["route", "--profile", PROFILE, "--video", VIDEO, "--json"]);
  assert.deepEqual(camelKeys(JSON.parse(route.stdout)), []);

  // track --json gives the tracker's settings by the profile's names (high_thresh, match_on).
  const det = join(dir, "det.txt");
  writeFileSync(det, "1,-1,10,10,20,40,0.9,-1,-1,-1\n2,-1,12,10,20,40,0.9,-1,-1,-1\n");
  const track = await cli(["track", "--mot-det", det, "--out", join(dir, "tracks.txt"), "--high-thresh", "0.7", "--json"]);
  assert.equal(track.code, 0, track.stderr);
  const t = JSON.parse(track.stdout) as { options: Record<string, unknown> };
  assert.deepEqual(camelKeys(t), []);
  assert.equal(t.options.high_thresh, 0.7);
  assert.equal(t.options.match_on, "prediction");
});
