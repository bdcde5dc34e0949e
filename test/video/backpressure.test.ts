import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFrames } from "../../src/video/index.js";
import { makeVideo, tempDir } from "./fixtures.js";

const tmp = tempDir();
let video = "";
const W = 640;
const H = 360;
const FRAME = W * H * 3; // 691,200 bytes
const TOTAL = 300; // 10 s at 30 fps: 207 MB of rgb24 in all

before(() => {
  video = makeVideo(tmp.dir, "long.mp4", { size: `${W}x${H}`, rate: 30, seconds: 10, pattern: "testsrc2" });
});
after(() => tmp.cleanup());

test("a stalled consumer pauses ffmpeg: bytes read and RSS stay flat, then every frame still arrives", async () => {
  const hwm = 2;
  const reader = readFrames(video, { highWaterMarkFrames: hwm });
  const it = reader[Symbol.asyncIterator]();
  for (let i = 0; i < 3; i++) assert.equal((await it.next()).done, false);

  // Let ffmpeg run into the full pipe, then watch for a while with the consumer stalled.
  await sleep(300);
  const bytes0 = reader.stats.bytesRead;
  const rss0 = process.memoryUsage().rss;
  let rssPeak = rss0;
  for (let i = 0; i < 15; i++) {
    await sleep(100);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  const bytes1 = reader.stats.bytesRead;
  const pid = reader.stats.ffmpegPid!;

  assert.equal(reader.stats.paused, true, "ffmpeg's stdout is paused");
  assert.doesNotThrow(() => process.kill(pid, 0), "ffmpeg is alive, blocked on the pipe, not finished");
  assert.equal(bytes1, bytes0, "nothing is read from ffmpeg while the consumer stalls");
  // Consumed 3 + hwm waiting in the stream + 1 being assembled + a chunk of slack.
  assert.ok(bytes1 <= (3 + hwm + 2) * FRAME, `read ${bytes1} bytes = ${(bytes1 / FRAME).toFixed(2)} frames while stalled`);
  assert.ok(rssPeak - rss0 < 3 * FRAME, `RSS grew by ${((rssPeak - rss0) / 2 ** 20).toFixed(1)} MiB while stalled`);

  // Resume: the rest arrives in order and memory stays bounded although 200 MB pass through.
  let n = 3;
  let peak = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    assert.equal(r.value.index, n);
    n++;
    if (n % 10 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  assert.equal(n, TOTAL);
  assert.equal(reader.stats.bytesRead, TOTAL * FRAME);
  assert.ok(peak - rss0 < 96 * 2 ** 20, `RSS rose ${((peak - rss0) / 2 ** 20).toFixed(1)} MiB over the whole video`);
});
