import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { childrenCpuSeconds, cpuFigures } from "../../bench/pipeline.js";

test("bench pipeline's CPU figures: the SDK's share and its budget at the goal", () => {
  // 2 cores, ffmpeg alone 4.5 s wall and 7.5 CPU-s (5.5 on main's sparse input), main 13.3 CPU-s, replayed 11 CPU-s.
  assert.deepEqual(cpuFigures({ ffmpegSeconds: 4.5, ffmpegCpu: 7.5, decodeCpu: 5.5, mainCpu: 13.3, replayCpu: 11, cores: 2 }), {
    ffmpeg_cpu_s: 7.5,
    decode_cpu_s: 5.5,
    main_cpu_s: 13.3,
    sdk_cpu_s: 7.8,
    sdk_only_cpu_s: 5.5,
    sdk_cpu_budget_s: 5.75, // 2 cores x 4.5 s / 0.8 = 11.25 CPU-s, less the decode's 5.5
  });
  // Where CPU time cannot be read, the figures are null, not made up.
  const unknown = { ffmpegSeconds: 4.5, ffmpegCpu: undefined, decodeCpu: undefined, mainCpu: undefined, replayCpu: undefined, cores: 2 };
  assert.deepEqual(cpuFigures(unknown), {
    ffmpeg_cpu_s: null,
    decode_cpu_s: null,
    main_cpu_s: null,
    sdk_cpu_s: null,
    sdk_only_cpu_s: null,
    sdk_cpu_budget_s: null,
  });
});

test("childrenCpuSeconds counts the CPU time of a child that has ended", { skip: process.platform !== "linux" && "reads /proc" }, () => {
  const before = childrenCpuSeconds();
  assert.equal(typeof before, "number");
  // A child that spins for 0.4 s of CPU time (its own clock, so a busy machine only makes it take longer).
  execFileSync(process.execPath, ["-e", "const t = process.cpuUsage(); while (process.cpuUsage(t).user < 4e5);"]);
  const used = childrenCpuSeconds()! - before!;
  assert.ok(used >= 0.35 && used < 5, `the child used ${used} CPU-s`);
});
