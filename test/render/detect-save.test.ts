// `detect --save`: the image with its boxes drawn by the render's code, in each class's colour, and
// untouched away from the boxes.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { trackColor } from "../../src/render/colors.js";
import { CLI, tempDir } from "../pipeline/support.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

const run = promisify(execFile);
const skip = skipUnlessTestdata("images", "bus.jpg") || skipUnlessTestdata("models", "yolo11n_int8_640.onnx");
const tmp = tempDir("va-detect-save-");
after(() => tmp.cleanup());

test("detect --save writes bus.jpg with every box in its class's colour and nothing drawn elsewhere", { skip, timeout: 120_000 }, async () => {
  const dir = join(tmp.dir, "saved");
  const { stdout } = await run("node", [CLI, "detect", "--image", testdata("images", "bus.jpg"), "--model", testdata("models", "yolo11n_int8_640.onnx"), "--save", dir, "--json"], { cwd: repoRoot });
  const r = JSON.parse(stdout) as { saved: string; detections: Array<{ class_id: number; box: number[] }> };
  assert.equal(r.saved, join(dir, "bus.jpg"));
  assert.ok(r.detections.some((d) => d.class_id === 5) && r.detections.filter((d) => d.class_id === 0).length >= 4);
  const sharp = (await import("sharp")).default;
  const saved = await sharp(r.saved).raw().toBuffer({ resolveWithObject: true });
  const orig = await sharp(testdata("images", "bus.jpg")).raw().toBuffer({ resolveWithObject: true });
  const W = saved.info.width;
  assert.deepEqual([saved.info.width, saved.info.height], [orig.info.width, orig.info.height]);
  const at = (buf: Buffer, x: number, y: number) => [0, 1, 2].map((c) => buf[(y * W + x) * 3 + c]!);
  // The middle of each box's left edge (3 px wide from x1): its class's colour.
  for (const d of r.detections) {
    const x = Math.round(d.box[0]!) + 1;
    const y = Math.round((d.box[1]! + d.box[3]!) / 2);
    const want = trackColor(-1, d.class_id);
    const got = at(saved.data, x, y);
    assert.ok(got.every((v, c) => Math.abs(v - want[c]!) <= 40), `class ${d.class_id} at (${x}, ${y}): ${got} vs ${want}`);
  }
  // Above every box and its label (the top rows of the picture): the original picture, give or take JPEG.
  const top = Math.min(...r.detections.map((d) => d.box[1]!)) - 40;
  let sum = 0;
  let n = 0;
  for (let y = 0; y < top; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++, n++) sum += Math.abs(saved.data[(y * W + x) * 3 + c]! - orig.data[(y * W + x) * 3 + c]!);
  assert.ok(top > 100 && sum / n < 3, `rows 0-${top}: mean difference ${sum / n}`);
});
