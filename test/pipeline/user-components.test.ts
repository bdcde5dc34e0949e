// Components of the user's own, through `main` and the API: a test-only component (test/support/colour-
// component.ts: a tiny ONNX model built here, its artifact written with the public FrameRows) named by a
// profile's `module`, and the SDK's generic image_classifier pointed at the Places365 contract model with
// Places365's labels file and preprocessing, which must give exactly what the built-in scene family gives.
// Both appear in the manifest (models_used, resolved_model_mapping, artifacts), survive SIGKILL and
// --resume array-equal, and are refused with coded errors when misnamed.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { loadRun, ModelManager, VideoAnalysisError } from "../../src/index.js";
import { PLACES365_LABELS } from "../../src/components/scene/labels.js";
import { JOURNAL_FILE } from "../../src/pipeline/journal.js";
import colour from "../support/colour-component.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";
import { CLI, tempDir } from "./support.js";

const exec = promisify(execFile);
const PEOPLE = ["video", "people_768x432_10fps.mp4"];
const skip = skipUnlessTestdata(...PEOPLE);
const FRAMES = 12;
const tmp = tempDir("va-user-components-");
after(() => tmp.cleanup());

const COLOUR_ONNX = join(tmp.dir, "colour.onnx");
const LABELS = join(tmp.dir, "places365.txt");
const MODULE = join(repoRoot, "dist", "test", "support", "colour-component.js");
const PLACES = join(repoRoot, "models", "contract", "places365_resnet50_224.onnx");

/** The tiny model: mean over H and W of FP32 [1,3,8,8] (onnx's own helper builds it). */
async function buildColourModel(): Promise<void> {
  const py = [
    "import onnx, sys",
    "from onnx import helper as h, TensorProto as T",
    "x = h.make_tensor_value_info('pixels', T.FLOAT, [1, 3, 8, 8])",
    "y = h.make_tensor_value_info('mean', T.FLOAT, [1, 3])",
    "g = h.make_graph([h.make_node('ReduceMean', ['pixels'], ['mean'], axes=[2, 3], keepdims=0)], 'colour', [x], [y])",
    "m = h.make_model(g, opset_imports=[h.make_opsetid('', 13)]); m.ir_version = 8",
    "onnx.checker.check_model(m); onnx.save(m, sys.argv[1])",
  ].join("\n");
  await exec("python3", ["-c", py, COLOUR_ONNX]);
}

function writeProfile(name: string, components: string): string {
  const path = join(tmp.dir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      "version: 1",
      `name: ${name}`,
      "backend:",
      `  embedded: { models_dir: ${join(repoRoot, "models", "contract")} }`,
      "analysis: { fps: 1, max_side: 320 }",
      "components:",
      components,
      "output: { commit_interval_s: 0, report: false }",
      "",
    ].join("\n"),
  );
  return path;
}

const COMPONENTS = [
  "  scene: { top_k: 5 }",
  `  colour: { module: ${MODULE}, model: ${COLOUR_ONNX} }`,
  `  places_again: { family: image_classifier, model: ${PLACES}, labels: ${LABELS}, resize: stretch_crop_bilinear, top_k: 5 }`,
].join("\n");

async function main(profile: string, out: string, extra: string[] = []): Promise<{ code: number; stderr: string }> {
  try {
    const r = await exec("node", [CLI, "main", "--video", testdata(...PEOPLE), "--profile", profile, "--out", out, "--quiet", "--max-frames", String(FRAMES), ...extra], { cwd: repoRoot });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { code: x.code, stderr: x.stderr };
  }
}

async function py(code: string, ...args: string[]): Promise<string> {
  return (await exec("python3", ["-c", code, ...args])).stdout.trim();
}

describe("user components through main (embedded backend, people video)", { skip, timeout: 600_000 }, () => {
  let profile = "";
  const clean = join(tmp.dir, "clean");
  before(async () => {
    await buildColourModel();
    writeFileSync(LABELS, PLACES365_LABELS.map((l) => l.label).join("\n") + "\n");
    profile = writeProfile("user", COMPONENTS);
    const r = await main(profile, clean);
    assert.equal(r.code, 0, r.stderr);
  });

  test("the manifest lists each component's model and artifact like a built-in's", () => {
    const m = JSON.parse(readFileSync(join(clean, "manifest.json"), "utf8"));
    const art = Object.fromEntries(m.artifacts.map((a: { path: string; component: string; frames: number }) => [a.path, a]));
    assert.equal(art["colour/mean.npz"].component, "colour");
    assert.equal(art["colour/mean.npz"].frames, FRAMES);
    assert.deepEqual(art["colour/mean.npz"].arrays.mean_rgb, { dtype: "float32", shape: [FRAMES, 3] });
    assert.equal(art["places_again/classes.npz"].component, "places_again");
    const used = Object.fromEntries(m.models_used.map((u: { slot: string }) => [u.slot, u]));
    assert.equal(used.colour.name, "colour_mean");
    assert.equal(used.colour.calls, FRAMES);
    assert.deepEqual(used.colour.contract.inputs, [{ name: "pixels", datatype: "FP32", shape: [1, 3, 8, 8] }]);
    assert.equal(used.places_again.family, "image_classifier");
    // The ONNX export itself, fed by the classifier's own normalisation (not the catalog's ensemble).
    assert.equal(used.places_again.name, "places_again");
    assert.deepEqual(used.places_again.contract.inputs, [{ name: "input", datatype: "FP32", shape: [1, 3, 224, 224] }]);
    assert.equal(m.resolved_model_mapping.places_again.reason, "named by components.places_again");
  });

  test("image_classifier on the Places365 model with its labels gives exactly the scene family's top-k", async () => {
    const out = await py(
      "import numpy as np,sys; a=np.load(sys.argv[1]); b=np.load(sys.argv[2]); " +
        "print(all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in ['top_k_indices','top_k_scores','top_k_labels','label_names','frame_index','timestamp','source_frame_index']), a['top_k_indices'].shape, len(set(a['top_k_labels'][:,0].tolist())))",
      join(clean, "scene", "places.npz"),
      join(clean, "places_again", "classes.npz"),
    );
    assert.match(out, new RegExp(`^True \\(${FRAMES}, 5\\) \\d+$`));
  });

  test("the colour component's rows: one per frame, in [0, 1], not all the same, on the frames scene saw", async () => {
    const out = await py(
      "import numpy as np,sys; c=np.load(sys.argv[1]); s=np.load(sys.argv[2]); v=c['mean_rgb']; " +
        "print(v.shape, bool((v>=0).all() and (v<=1).all()), len(np.unique(v.round(4), axis=0)) > 1, np.array_equal(c['frame_index'], s['frame_index']))",
      join(clean, "colour", "mean.npz"),
      join(clean, "scene", "places.npz"),
    );
    assert.equal(out, `(${FRAMES}, 3) True True True`);
  });

  test("render and the report's reader take a user's top-k artifact like scene's: its caption is drawn", async () => {
    const out = join(tmp.dir, "classifier-only");
    const p = writeProfile("classifier-only", `  places_again: { family: image_classifier, model: ${PLACES}, labels: ${LABELS}, resize: stretch_crop_bilinear }`);
    const r = await main(p, out);
    assert.equal(r.code, 0, r.stderr);
    const run = await loadRun(out);
    try {
      assert.deepEqual(run.labels.map((l) => [l.component, l.label.length]), [["places_again", FRAMES]]);
      assert.equal(run.scene?.component, "places_again");
    } finally {
      await run.close();
    }
    const frame0 = async (extra: string[]) => {
      const mp4 = join(tmp.dir, `render-${extra.join("")}.mp4`);
      await exec("node", [CLI, "render", out, "--out", mp4, "--quiet", ...extra], { cwd: repoRoot });
      const count = (await exec("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", mp4])).stdout.trim();
      assert.equal(count, String(FRAMES));
      return (await exec("ffmpeg", ["-v", "error", "-i", mp4, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], { encoding: "buffer", maxBuffer: 64 << 20 })).stdout;
    };
    const withCaption = await frame0(["--layers", "caption"]);
    const without = await frame0(["--no-layers", "caption"]);
    assert.equal(withCaption.length, without.length);
    assert.notDeepEqual(withCaption, without, "the caption layer drew nothing from the classifier's artifact");
  });

  test("SIGKILL mid-run, then --resume: array-equal to the clean run, the user's artifacts included", async () => {
    const out = join(tmp.dir, "killed");
    await new Promise<void>((resolve) => {
      const c = spawn("node", [CLI, "main", "--video", testdata(...PEOPLE), "--profile", profile, "--out", out, "--quiet", "--max-frames", String(FRAMES)], { cwd: repoRoot });
      const poll = setInterval(() => {
        try {
          if ((JSON.parse(readFileSync(join(out, JOURNAL_FILE), "utf8")) as { frames: number }).frames >= 5) c.kill("SIGKILL");
        } catch {
          // not committed yet
        }
      }, 10);
      c.on("close", () => {
        clearInterval(poll);
        resolve();
      });
    });
    const r = await main(profile, out, ["--resume"]);
    assert.equal(r.code, 0, r.stderr);
    const cmp = (await exec("python3", [join(repoRoot, "test", "python", "compare_runs.py"), clean, out])).stdout.trim();
    assert.match(cmp, /^equal \(3 files/);
    assert.equal(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")).interruptions.length, 1);
  });
});

describe("user components: the API and the errors", { timeout: 120_000 }, () => {
  before(buildColourModel);
  const base = { version: 1, name: "api", backend: { embedded: { models_dir: join(repoRoot, "models", "contract") } }, output: { report: false } };

  test("a component given in code runs in process(): solid frames give their exact colour", async () => {
    const mm = await ModelManager.fromProfile({ ...base, components: {} }, { components: [colour("colour", { model: COLOUR_ONNX })] });
    try {
      const colours = [[255, 0, 0], [10, 200, 30], [128, 128, 128]] as const;
      const frames = colours.map(([r, g, b]) => {
        const data = new Uint8Array(64 * 48 * 3);
        for (let i = 0; i < data.length; i += 3) data.set([r, g, b], i);
        return { width: 64, height: 48, data };
      });
      const got: number[][] = [];
      for await (const res of mm.process(frames)) got.push([...(res["colour"] as Float32Array)]);
      assert.deepEqual(got, colours.map((c) => c.map((v) => Math.fround(v / 255))));
      assert.deepEqual(mm.modelsUsed().map((u) => [u.slot, u.calls]), [["colour", 3]]);
    } finally {
      await mm.close();
    }
  });

  const refused = async (components: Record<string, unknown>, code: string, message: RegExp) => {
    await assert.rejects(ModelManager.fromProfile({ ...base, components }), (e: unknown) => {
      assert.ok(e instanceof VideoAnalysisError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message + JSON.stringify(e.details), message);
      return true;
    });
  };

  test("a misspelt built-in is refused with the built-ins named (not taken for a component of one's own)", () =>
    refused({ scenes: { top_k: 3 } }, "PROFILE_INVALID", /unknown component "scenes" \(did you mean "scene"\?\).*module/));

  test("a module that exports no component is refused naming the file", () =>
    refused({ x: { module: join(repoRoot, "dist", "src", "errors.js") } }, "PROFILE_INVALID", /components\.x\.module: .*errors\.js exports no component/));

  test("a module whose factory throws on its settings is refused naming the key, not with a stack trace", () =>
    refused({ x: { module: MODULE } }, "PROFILE_INVALID", /components\.x\.module: .*colour-component\.js refused the settings of components\.x: components\.x\.model: expected/));

  test("a module that cannot be loaded is refused naming the file", () =>
    refused({ x: { module: join(tmp.dir, "absent.js") } }, "PROFILE_INVALID", /components\.x\.module: cannot load .*absent\.js/));

  test("image_classifier settings are checked with their key paths", () =>
    refused({ c: { family: "image_classifier", model: PLACES, top_k: 0 } }, "PROFILE_INVALID", /components\.c\.top_k/));

  test("a labels file that does not match the model's classes is refused", async () => {
    writeFileSync(join(tmp.dir, "three.txt"), "a\nb\nc\n");
    const mm = await ModelManager.fromProfile({ ...base, components: { c: { family: "image_classifier", model: PLACES, labels: join(tmp.dir, "three.txt") } } });
    try {
      const frame = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
      await assert.rejects(async () => {
        for await (const _ of mm.process([frame])) void _;
      }, /components\.c\.labels: .*three\.txt has 3 labels, .*places365_resnet50_224\.onnx gives 365 classes/);
    } finally {
      await mm.close();
    }
  });

  test("a model file that does not exist is refused before any frame", async () => {
    const mm = await ModelManager.fromProfile({ ...base, components: { c: { family: "image_classifier", model: join(tmp.dir, "nope.onnx") } } });
    try {
      const frame = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
      await assert.rejects(async () => {
        for await (const _ of mm.process([frame])) void _;
      }, (e: unknown) => e instanceof VideoAnalysisError && e.code === "NOT_FOUND" && /components\.c: its model file .*nope\.onnx does not exist/.test(e.message));
    } finally {
      await mm.close();
    }
  });

  test("an embedded model may not take a catalog model's name (it would be called as that ensemble)", async () => {
    const mm = await ModelManager.fromProfile({ ...base, components: { midas_256: { family: "image_classifier", model: PLACES } } });
    try {
      await assert.rejects(async () => {
        for await (const _ of mm.process([{ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) }])) void _;
      }, /components\.midas_256: its model is called midas_256, which is a catalog model's name/);
    } finally {
      await mm.close();
    }
  });

  test("a name or file taken by a built-in is refused", () =>
    assert.rejects(ModelManager.fromProfile({ ...base, components: {} }, { components: [colour("scene", { model: COLOUR_ONNX })] }), /component scene: its name "scene" is taken/));
});
