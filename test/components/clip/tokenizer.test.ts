import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { isVideoAnalysisError } from "../../../src/errors.js";
import {
  CLIP_BPE_ENV,
  CLIP_EOT,
  CLIP_SOT,
  CLIP_VOCAB_SIZE,
  ClipTokenizer,
  eotIndex,
  resolveClipBpePath,
  SHIPPED_CLIP_BPE_PATH,
} from "../../../src/components/clip/tokenizer.js";
import { skipUnlessTestdata, testdata } from "../../support/testdata.js";

const BPE = ["clip", "bpe_simple_vocab_16e6.txt.gz"] as const;
const VECTORS = ["clip", "tokenizer_vectors.json"] as const;
const skipBpe = skipUnlessTestdata(...BPE);
const skipVectors = skipBpe || skipUnlessTestdata(...VECTORS);

const tokenizer = skipBpe ? undefined : await ClipTokenizer.fromFile(testdata(...BPE));
/** The tokenizer; only called inside tests that skip when the BPE file is absent. */
const tk = (): ClipTokenizer => tokenizer!;

interface Vector {
  name: string;
  text: string;
  ids: number[];
}
const vectors: Vector[] = skipVectors ? [] : JSON.parse(readFileSync(testdata(...VECTORS), "utf8"));
const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

test("tokenizer vectors: the file has its 25 cases", { skip: skipVectors }, () => {
  assert.equal(vectors.length, 25);
  assert.ok(vectors.filter((v) => isAscii(v.text)).length >= 12);
});

// Every case must match, ASCII or not: the vectors come from the Hugging Face tokenizer (no ftfy),
// and this tokenizer follows the same clean-up.
for (const v of vectors) {
  test(`tokenizer vector ${v.name} (${isAscii(v.text) ? "ascii" : "non-ascii"})`, () => {
    assert.deepEqual(tk().encode(v.text), v.ids);
  });
}

test("vocabulary size and special tokens", { skip: skipBpe }, () => {
  assert.equal(tk().vocabSize, CLIP_VOCAB_SIZE);
  assert.deepEqual(tk().encode(""), [CLIP_SOT, CLIP_EOT]);
  assert.deepEqual(tk().encode("   \n\t "), [CLIP_SOT, CLIP_EOT]);
  // Special tokens written in the text are recognised, as both reference tokenizers do.
  assert.deepEqual(tk().encode("a <|endoftext|>"), [CLIP_SOT, 320, CLIP_EOT, CLIP_EOT]);
  assert.deepEqual(tk().encode("<|startoftext|>a"), [CLIP_SOT, CLIP_SOT, 320, CLIP_EOT]);
});

test("encode is stable across calls (word cache) and decode reverses it", { skip: skipBpe }, () => {
  const text = "A photo of a dog playing in the snow, at night!";
  const first = tk().encode(text);
  assert.deepEqual(tk().encode(text), first);
  assert.equal(tk().decode(first), "<|startoftext|>a photo of a dog playing in the snow , at night ! <|endoftext|>");
  assert.equal(tk().decode(tk().encode("生活的真谛是")), "<|startoftext|>生活的真谛是 <|endoftext|>");
});

test("tokenize: INT64 row of 77, zero padding after EOT", { skip: skipBpe }, () => {
  const ids = tk().encode("a diagram");
  const row = tk().tokenize("a diagram");
  assert.ok(row instanceof BigInt64Array);
  assert.equal(row.length, 77);
  assert.deepEqual(Array.from(row.subarray(0, ids.length), Number), ids);
  assert.ok(row.subarray(ids.length).every((x) => x === 0n));
  assert.equal(tk().eotIndex(row), ids.length - 1);
});

test("tokenize: EOT padding (Hugging Face style) keeps the same EOT index", { skip: skipBpe }, () => {
  const ids = tk().encode("a dog");
  const row = tk().tokenize("a dog", 77, { padId: CLIP_EOT });
  assert.ok(row.subarray(ids.length).every((x) => x === BigInt(CLIP_EOT)));
  assert.equal(eotIndex(row), ids.length - 1);
});

test("tokenize: long text is cut to 77 with EOT last; truncate:false refuses it", { skip: skipBpe }, () => {
  const text = Array.from({ length: 120 }, (_, i) => `word${i % 10}`).join(" ");
  const ids = tk().encode(text);
  assert.ok(ids.length > 77);
  const row = Array.from(tk().tokenize(text), Number);
  assert.equal(row.length, 77);
  assert.equal(row[0], CLIP_SOT);
  assert.equal(row[76], CLIP_EOT);
  assert.deepEqual(row.slice(0, 76), ids.slice(0, 76));
  assert.equal(eotIndex(row), 76);
  assert.throws(
    () => tk().tokenize(text, 77, { truncate: false }),
    (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT" && /at most 77/.test(e.message),
  );
});

test("tokenize: exactly 77 ids need no cut; other context lengths", { skip: skipBpe }, () => {
  // 75 single-token words + SOT + EOT = 77.
  const text = Array.from({ length: 75 }, () => "a").join(" ");
  const row = Array.from(tk().tokenize(text, 77, { truncate: false }), Number);
  assert.deepEqual(row, tk().encode(text));
  const short = Array.from(tk().tokenize("a b c d", 4), Number);
  assert.deepEqual(short, [CLIP_SOT, 320, 321, CLIP_EOT]);
  assert.throws(() => tk().tokenize("a", 1), (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT");
});

test("eotIndex: first position of the largest id", () => {
  assert.equal(eotIndex([49406, 320, 49407, 0, 0]), 2);
  assert.equal(eotIndex([49406, 320, 49407, 49407]), 2);
  assert.equal(eotIndex(new BigInt64Array([49406n, 49407n, 0n])), 1);
  assert.throws(() => eotIndex([]), (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT");
});

test("a missing BPE file is an IO_ERROR that names it and says what to do", async () => {
  await assert.rejects(ClipTokenizer.fromFile("/nonexistent/bpe_simple_vocab_16e6.txt.gz"), (e: unknown) => {
    assert.ok(isVideoAnalysisError(e));
    assert.equal(e.code, "IO_ERROR");
    assert.match(e.message, /\/nonexistent\/bpe_simple_vocab_16e6\.txt\.gz/);
    assert.match(e.message, /openai\/CLIP/);
    assert.match(e.message, new RegExp(CLIP_BPE_ENV));
    return true;
  });
  // An explicit path never falls back to another location.
  assert.equal(resolveClipBpePath({ bpePath: "/nonexistent/x.gz" }), "/nonexistent/x.gz");
});

test("resolveClipBpePath: $CLIP_BPE_PATH first, then the copy shipped with the SDK (openai/CLIP's file, byte for byte)", { skip: skipBpe }, () => {
  const saved = process.env[CLIP_BPE_ENV];
  try {
    process.env[CLIP_BPE_ENV] = testdata(...BPE);
    assert.equal(resolveClipBpePath(), testdata(...BPE));
    process.env[CLIP_BPE_ENV] = "/nonexistent/bpe.gz";
    assert.equal(resolveClipBpePath(), SHIPPED_CLIP_BPE_PATH); // skipped for a file that is not there
    delete process.env[CLIP_BPE_ENV];
    assert.equal(resolveClipBpePath(), SHIPPED_CLIP_BPE_PATH);
    assert.ok(readFileSync(SHIPPED_CLIP_BPE_PATH).equals(readFileSync(testdata(...BPE))));
  } finally {
    if (saved === undefined) delete process.env[CLIP_BPE_ENV];
    else process.env[CLIP_BPE_ENV] = saved;
  }
});

test("a file that is not CLIP's merges is refused with IO_ERROR", async () => {
  const dir = mkdtempSync(join(tmpdir(), "clip-bpe-"));
  try {
    const noHeader = join(dir, "a.txt");
    writeFileSync(noHeader, "i n\nt h\n");
    await assert.rejects(ClipTokenizer.fromFile(noHeader), (e: unknown) =>
      isVideoAnalysisError(e) && e.code === "IO_ERROR" && /#version/.test(e.message) && e.message.includes(noHeader),
    );
    const short = join(dir, "b.txt");
    writeFileSync(short, "#version: 0.2\ni n\nt h\n");
    await assert.rejects(ClipTokenizer.fromFile(short), (e: unknown) =>
      isVideoAnalysisError(e) && e.code === "IO_ERROR" && /has 2 merges, CLIP needs 48894/.test(e.message),
    );
    const badGz = join(dir, "c.gz");
    writeFileSync(badGz, Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    await assert.rejects(ClipTokenizer.fromFile(badGz), (e: unknown) => isVideoAnalysisError(e) && e.code === "IO_ERROR");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fromFile lets the event loop run while it builds: no pause near a whole build", { skip: skipBpe }, async () => {
  // The longest pause of the event loop during a load, seen by a chain of immediates (the least of three
  // loads, so that one preemption of a busy machine does not count); then the time of one synchronous build
  // of the same text. Building in one go, the longest pause would be about that long.
  const longestPause = async (): Promise<[number, ClipTokenizer]> => {
    let done = false;
    let longest = 0;
    let last = performance.now();
    const tick = () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const t = await ClipTokenizer.fromFile(testdata(...BPE));
    await new Promise((r) => setImmediate(r)); // the tick queued before the last stretch measures it
    done = true;
    return [longest, t];
  };
  const loads = [await longestPause(), await longestPause(), await longestPause()];
  const longest = Math.min(...loads.map(([p]) => p));
  const text = gunzipSync(readFileSync(testdata(...BPE))).toString("utf8");
  const t0 = performance.now();
  const sync = ClipTokenizer.fromMergesText(text);
  const build = performance.now() - t0;
  assert.ok(longest < build / 2, `longest pause ${longest.toFixed(1)} ms, one synchronous build ${build.toFixed(1)} ms`);
  assert.deepEqual(loads[0]![1].encode("a photo of a person"), sync.encode("a photo of a person"));
});

test("an uncompressed copy of the merges file works too", { skip: skipBpe }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "clip-bpe-"));
  try {
    const plain = join(dir, "bpe.txt");
    writeFileSync(plain, gunzipSync(readFileSync(testdata(...BPE))));
    const t = await ClipTokenizer.fromFile(plain);
    assert.deepEqual(t.encode("hello world"), [CLIP_SOT, 3306, 1002, CLIP_EOT]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
