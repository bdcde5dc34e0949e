import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { normalizeRotation, parseRational, probeVideo, readFrames } from "../../src/video/index.js";
import { streamRotation } from "../../src/video/metadata.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";
import { ffmpegRun, makeRotated, makeVideo, tempDir, truncateCopy } from "./fixtures.js";

const tmp = tempDir();
const files: Record<string, string> = {};

before(() => {
  const d = tmp.dir;
  files.plain = makeVideo(d, "plain.mp4", { seconds: 2 });
  files.faststart = makeVideo(d, "faststart.mp4", { seconds: 2, extra: ["-movflags", "+faststart"] });
  files.withAudio = join(d, "with-audio.mkv");
  ffmpegRun([
    "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=d=2",
    "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", files.withAudio,
  ]);
  files.rawH264 = join(d, "raw.h264");
  ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", files.rawH264]);
  files.rotated = makeRotated(files.plain, join(d, "rotated.mp4"));
  files.audioOnly = join(d, "audio.m4a");
  ffmpegRun(["-f", "lavfi", "-i", "sine=d=1", files.audioOnly]);
  files.wav = join(d, "audio.wav");
  ffmpegRun(["-f", "lavfi", "-i", "sine=d=1", files.wav]);
  files.jpeg = join(d, "still.jpg");
  ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", files.jpeg]);
  files.text = join(d, "notes.mp4");
  writeFileSync(files.text, "this is not a video, just some text in a file named .mp4\n".repeat(20));
  files.empty = join(d, "empty.mp4");
  writeFileSync(files.empty, "");
  // moov at the end (ffmpeg's default): cutting the file in half loses the index.
  files.truncEnd = truncateCopy(files.plain, join(d, "trunc-moov-end.mp4"), 0.5);
  // moov at the start: the index survives and still declares 2 s, the frame data does not.
  files.truncStart = truncateCopy(files.faststart, join(d, "trunc-moov-start.mp4"), 0.5);
  // Matroska states its duration up front: cut short, only reading the end shows the data missing.
  files.longMkv = join(d, "long.mkv");
  ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", files.longMkv]);
  files.truncMkv = truncateCopy(files.longMkv, join(d, "trunc.mkv"), 0.5);
  // A video stream with zero frames: a YUV4MPEG2 header and nothing after it.
  files.zeroFrames = join(d, "zero.y4m");
  writeFileSync(files.zeroFrames, "YUV4MPEG2 W320 H240 F10:1 Ip A1:1 C420jpeg\n");
  // ffmpeg asked for zero frames writes an MP4 without any stream.
  files.zeroMp4 = join(d, "zero.mp4");
  ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:d=1", "-frames:v", "0", "-pix_fmt", "yuv420p", files.zeroMp4]);
});
after(() => tmp.cleanup());

/** Asserts that `p` rejects with a VideoAnalysisError of `code` whose message names `file` and matches `re`. */
async function rejectsWith(p: Promise<unknown>, code: string, file: string, re: RegExp): Promise<VideoAnalysisError> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected ${code} for ${file}`),
    (e: unknown) => {
      caught = e;
    },
  );
  assert.ok(caught instanceof VideoAnalysisError, `not a VideoAnalysisError: ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.includes(file), `message does not name the file: ${caught.message}`);
  assert.match(caught.message, re);
  assert.ok(!/\n\s+at /.test(caught.message), "no stack trace in the message");
  return caught;
}

describe("probeVideo", () => {
  test("reads the metadata of a plain H.264 MP4", async () => {
    const m = await probeVideo(files.plain!);
    assert.equal(m.path, files.plain);
    assert.equal(m.codec, "h264");
    assert.equal(m.pixelFormat, "yuv420p");
    assert.deepEqual([m.width, m.height, m.rotation, m.displayWidth, m.displayHeight], [320, 240, 0, 320, 240]);
    assert.equal(m.frameRate, 10);
    assert.equal(m.frameRateFraction, "10/1");
    assert.equal(m.duration, 2);
    assert.equal(m.frameCount, 20);
    assert.equal(m.frameCountSource, "container");
    assert.equal(m.hasAudio, false);
    assert.equal(m.startTime, 0);
  });

  test("Matroska with audio: frame count estimated from duration x rate, hasAudio", async () => {
    const m = await probeVideo(files.withAudio!);
    assert.equal(m.hasAudio, true);
    assert.equal(m.frameRate, 25);
    assert.equal(m.frameCountSource, "estimated");
    // 50 frames; Matroska's duration (2.023 s here) makes the estimate 50 or 51.
    assert.ok(Math.abs(m.frameCount - 50) <= 1, `frameCount ${m.frameCount}`);
    assert.match(m.container, /matroska/);
  });

  test("a raw H.264 stream (no duration, no count): frames counted by demuxing", async () => {
    const m = await probeVideo(files.rawH264!);
    assert.equal(m.frameCountSource, "counted");
    assert.equal(m.frameCount, 20);
    assert.equal(m.durationSource, "estimated");
    assert.equal(m.duration, 2);
  });

  test("ffprobe / ffmpeg not installed -> FAILED_PRECONDITION", async () => {
    const saved = { probe: process.env.FFPROBE_PATH, mpeg: process.env.FFMPEG_PATH };
    try {
      process.env.FFPROBE_PATH = join(tmp.dir, "no-ffprobe");
      await rejectsWith(probeVideo(files.plain!), "FAILED_PRECONDITION", files.plain!, /install ffmpeg/);
      if (saved.probe === undefined) delete process.env.FFPROBE_PATH;
      else process.env.FFPROBE_PATH = saved.probe;
      const metadata = await probeVideo(files.plain!);
      process.env.FFMPEG_PATH = join(tmp.dir, "no-ffmpeg");
      const drain = async () => {
        for await (const _ of readFrames(files.plain!, { metadata })) void _;
      };
      await rejectsWith(drain(), "FAILED_PRECONDITION", files.plain!, /install ffmpeg/);
    } finally {
      for (const [k, v] of [["FFPROBE_PATH", saved.probe], ["FFMPEG_PATH", saved.mpeg]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test("a rotated phone video reports the clockwise rotation and swapped display size", async () => {
    const m = await probeVideo(files.rotated!);
    assert.ok(m.rotation === 90 || m.rotation === 270, `rotation ${m.rotation}`);
    assert.deepEqual([m.width, m.height, m.displayWidth, m.displayHeight], [320, 240, 240, 320]);
  });

  test("missing file -> NOT_FOUND", async () => {
    const p = join(tmp.dir, "does-not-exist.mp4");
    await rejectsWith(probeVideo(p), "NOT_FOUND", p, /does not exist/);
  });

  test("a text file named .mp4 -> VIDEO_INVALID (not a video)", async () => {
    await rejectsWith(probeVideo(files.text!), "VIDEO_INVALID", files.text!, /not a video file/);
  });

  test("an empty file -> VIDEO_INVALID", async () => {
    await rejectsWith(probeVideo(files.empty!), "VIDEO_INVALID", files.empty!, /empty/);
  });

  test("a JPEG (a single still picture to ffprobe) -> VIDEO_INVALID (still image)", async () => {
    await rejectsWith(probeVideo(files.jpeg!), "VIDEO_INVALID", files.jpeg!, /still image/);
  });

  test("audio only (.m4a, .wav) -> VIDEO_INVALID (no video stream)", async () => {
    await rejectsWith(probeVideo(files.audioOnly!), "VIDEO_INVALID", files.audioOnly!, /no video stream.*audio/);
    await rejectsWith(probeVideo(files.wav!), "VIDEO_INVALID", files.wav!, /no video stream.*audio/);
  });

  test("a directory -> VIDEO_INVALID", async () => {
    await rejectsWith(probeVideo(tmp.dir), "VIDEO_INVALID", tmp.dir, /directory/);
  });

  test("MP4 cut in half, index at the end -> VIDEO_INVALID (truncated, no index)", async () => {
    await rejectsWith(probeVideo(files.truncEnd!), "VIDEO_INVALID", files.truncEnd!, /truncated/);
  });

  test("MP4 cut in half, index at the start -> VIDEO_INVALID (data ends early)", async () => {
    // Found from the index itself (no ffprobe run): where the video's last bytes should be.
    await rejectsWith(probeVideo(files.truncStart!), "VIDEO_INVALID", files.truncStart!, /truncated.*data runs to byte \d+ of a \d+-byte file/);
    // Without the end check the index alone looks complete.
    const m = await probeVideo(files.truncStart!, { checkEnd: false });
    assert.equal(m.frameCount, 20);
  });

  test("Matroska cut in half -> VIDEO_INVALID (ffprobe finds no packets where the last second should be)", async () => {
    const whole = await probeVideo(files.longMkv!);
    assert.ok(Math.abs(whole.duration - 4) < 0.1);
    await rejectsWith(probeVideo(files.truncMkv!), "VIDEO_INVALID", files.truncMkv!, /truncated: its index declares 4\.\d+ s/);
  });

  test("a video stream with zero frames -> VIDEO_INVALID (no frames)", async () => {
    await rejectsWith(probeVideo(files.zeroFrames!), "VIDEO_INVALID", files.zeroFrames!, /no frames/);
  });

  test("an MP4 written with -frames:v 0 (no stream at all) -> VIDEO_INVALID", async () => {
    await rejectsWith(probeVideo(files.zeroMp4!), "VIDEO_INVALID", files.zeroMp4!, /no video stream/);
  });

  test("readFrames reports the same errors as probeVideo, naming the file", async () => {
    const drain = async (p: string) => {
      for await (const _ of readFrames(p)) void _;
    };
    await rejectsWith(drain(join(tmp.dir, "nope.mp4")), "NOT_FOUND", join(tmp.dir, "nope.mp4"), /does not exist/);
    await rejectsWith(drain(files.text!), "VIDEO_INVALID", files.text!, /not a video/);
    await rejectsWith(drain(files.audioOnly!), "VIDEO_INVALID", files.audioOnly!, /no video stream/);
    await rejectsWith(drain(files.truncEnd!), "VIDEO_INVALID", files.truncEnd!, /truncated/);
    await rejectsWith(drain(files.truncStart!), "VIDEO_INVALID", files.truncStart!, /truncated/);
    await rejectsWith(drain(files.zeroFrames!), "VIDEO_INVALID", files.zeroFrames!, /no frames/);
  });

  for (const name of ["people_768x432_10fps.mp4", "cars_768x432_12fps.mp4", "bottles_640x360_30fps.mp4", "sintel_1280x720_23frames.mp4"]) {
    test(`shared test video ${name}`, { skip: skipUnlessTestdata("video", name) }, async () => {
      const m = await probeVideo(testdata("video", name));
      assert.equal(m.codec, "h264");
      assert.equal(m.frameCountSource, "container");
      assert.equal(m.rotation, 0);
      const expected: Record<string, [number, number, number, number, boolean]> = {
        "people_768x432_10fps.mp4": [768, 432, 10, 1394, false],
        "cars_768x432_12fps.mp4": [768, 432, 12.5, 377, true],
        "bottles_640x360_30fps.mp4": [640, 360, 179 / 6, 1189, false],
        "sintel_1280x720_23frames.mp4": [1280, 720, 24, 23, false],
      };
      assert.deepEqual([m.width, m.height, m.frameRate, m.frameCount, m.hasAudio], expected[name]);
      // The colour as the stream states it (render draws in its matrix and tags its output with it): people
      // and cars state BT.601 (smpte170m), bottles and sintel nothing (BT.601 too, and untagged).
      const tagged = name.startsWith("people") || name.startsWith("cars");
      const tags = { colorSpace: m.colorSpace, colorPrimaries: m.colorPrimaries, colorTransfer: m.colorTransfer, colorRange: m.colorRange };
      assert.equal(m.colorMatrix, "bt601");
      assert.deepEqual(tags, tagged ? { colorSpace: "smpte170m", colorPrimaries: "smpte170m", colorTransfer: "smpte170m", colorRange: "tv" } : { colorSpace: undefined, colorPrimaries: undefined, colorTransfer: undefined, colorRange: undefined });
    });
  }
});

describe("rotation helpers", () => {
  test("normalizeRotation", () => {
    const cases: [number, number][] = [[0, 0], [90, 90], [-90, 270], [270, 270], [-270, 90], [180, 180], [-180, 180], [360, 0], [450, 90], [89.6, 90], [45, 0], [Number.NaN, 0]];
    for (const [input, want] of cases) assert.equal(normalizeRotation(input), want, `normalizeRotation(${input})`);
  });

  test("streamRotation: display matrix (counter-clockwise) first, then the rotate tag (clockwise)", () => {
    assert.equal(streamRotation({ index: 0, rotation: -90 }), 90);
    assert.equal(streamRotation({ index: 0, rotation: "-90" }), 90);
    assert.equal(streamRotation({ index: 0, rotation: 90 }), 270);
    assert.equal(streamRotation({ index: 0, tags: { rotate: "90" } }), 90);
    assert.equal(streamRotation({ index: 0, rotation: 180, tags: { rotate: "90" } }), 180);
    assert.equal(streamRotation({ index: 0 }), 0);
  });

  test("parseRational", () => {
    assert.equal(parseRational("30000/1001"), 30000 / 1001);
    assert.equal(parseRational("10/1"), 10);
    assert.equal(parseRational("0/0"), undefined);
    assert.equal(parseRational("N/A"), undefined);
    assert.equal(parseRational(25), 25);
  });
});
