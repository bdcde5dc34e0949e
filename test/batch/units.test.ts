// The parts of batch and the queue that need neither models nor Redis: inputs, names, URLs, fingerprints.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { expandInputs, folderName } from "../../src/batch/inputs.js";
import { redactRedisUrl } from "../../src/batch/redis-url.js";
import { profileFingerprint } from "../../src/batch/run-video.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { loadProfile } from "../../src/profiles/index.js";
import { EMBEDDED_PROFILE, tempDir } from "../pipeline/support.js";

const tmp = tempDir("va-batch-units-");
after(() => tmp.cleanup());

function touch(...parts: string[]): string {
  const p = join(tmp.dir, ...parts);
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, "not really a video; expandInputs does not read it");
  return p;
}

describe("batch inputs", () => {
  test("folders recursively by extension, globs, list files; named from the path below the input; a video found twice kept once", async () => {
    const a = touch("lib", "2024", "harbour.MP4");
    const b = touch("lib", "intro.mov");
    touch("lib", "notes.txt");
    touch("lib", ".hidden.mp4");
    const c = touch("other", "x y#1.mkv");
    const list = join(tmp.dir, "list.txt");
    writeFileSync(list, `# videos to do\nother/x y#1.mkv\n\n${b}   # again\n`);
    const v = await expandInputs([join(tmp.dir, "lib"), `${tmp.dir}/oth*/*.mkv`], { lists: [list] });
    assert.deepEqual(v, [
      { video: c, name: "x_y_1" },
      { video: b, name: "intro" },
      { video: a, name: "2024__harbour" },
    ]);
    const only = await expandInputs([join(tmp.dir, "lib")], { extensions: ["mov"] });
    assert.deepEqual(only.map((x) => x.name), ["intro"]);
  });

  test("names two videos would share get a hash of the path, whatever the order", async () => {
    const p = touch("p", "same.mp4");
    const q = touch("q", "same.mp4");
    const one = await expandInputs([p, q]);
    const two = await expandInputs([q, p]);
    assert.match(one[0]!.name, /^same-[0-9a-f]{8}$/);
    assert.notEqual(one[0]!.name, one[1]!.name);
    assert.deepEqual(new Map(one.map((x) => [x.video, x.name])), new Map(two.map((x) => [x.video, x.name])));
    assert.equal(folderName("a/b c/d.mp4"), "a__b_c__d");
    // One path segment, never hidden, never a way out of --out.
    for (const n of [folderName("../x.mp4"), folderName(".x.mp4"), folderName("a\\..\\b.mp4")]) assert.match(n, /^[^./\\][^/\\]*$/);
  });

  test("bad inputs: NOT_FOUND naming the path, the pattern or the list line; INVALID_ARGUMENT for no videos", async () => {
    await assert.rejects(expandInputs([join(tmp.dir, "nope.mp4")]), (e: unknown) => e instanceof VideoAnalysisError && e.code === "NOT_FOUND" && /nope\.mp4 is neither a file/.test(e.message));
    await assert.rejects(expandInputs([`${tmp.dir}/*.webm`]), (e: unknown) => e instanceof VideoAnalysisError && e.code === "NOT_FOUND" && /matches no file/.test(e.message));
    const list = join(tmp.dir, "bad-list.txt");
    writeFileSync(list, "missing.mp4\n");
    await assert.rejects(expandInputs([], { lists: [list] }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "NOT_FOUND" && /missing\.mp4 \(listed in .*bad-list\.txt\)/.test(e.message));
    mkdirSync(join(tmp.dir, "empty"));
    await assert.rejects(expandInputs([join(tmp.dir, "empty")]), (e: unknown) => e instanceof VideoAnalysisError && e.code === "INVALID_ARGUMENT" && /no videos/.test(e.message));
  });
});

describe("queue helpers", () => {
  test("a Redis URL is printed without user or password", () => {
    assert.equal(redactRedisUrl("rediss://admin:hunter2@cache.example:6380/2"), "rediss://***@cache.example:6380/2");
    assert.equal(redactRedisUrl("redis://:hunter2@10.0.0.1:6379"), "redis://***@10.0.0.1:6379");
    assert.equal(redactRedisUrl("redis://10.0.0.1:6379"), "redis://10.0.0.1:6379");
    assert.ok(!redactRedisUrl("redis://:hunter2@[::1").includes("hunter2"));
  });

  test("the profile fingerprint: the same for output settings and header values, different for what changes results", async () => {
    const p = await loadProfile(EMBEDDED_PROFILE);
    const base = profileFingerprint(p);
    assert.equal(profileFingerprint({ ...p, output: { ...p.output, dir: "elsewhere", overwrite: !p.output.overwrite } }), base);
    assert.notEqual(profileFingerprint({ ...p, analysis: { ...p.analysis, fps: p.analysis.fps + 1 } }), base);
  });
});
