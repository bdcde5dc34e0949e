import { VideoAnalysisError } from "../../errors.js";
import type { Layers } from "../../render/annotate.js";
import { numberFlag, parseCommandArgs, required, stopOnSignals, usageError, type Command } from "../command.js";

const LAYERS: Array<keyof Layers> = ["boxes", "trails", "depth", "flow", "caption"];

/** "--layers boxes,caption" / "--no-layers flow": the layers to draw. */
function layerFlags(cmd: Pick<Command, "usage">, on: string | undefined, off: string | undefined): Partial<Layers> {
  const parse = (flag: string, v: string) =>
    v.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
      if (!LAYERS.includes(s as keyof Layers)) throw usageError(cmd, `--${flag}: unknown layer "${s}"; layers are ${LAYERS.join(", ")}`);
      return s as keyof Layers;
    });
  const out: Partial<Layers> = {};
  if (on !== undefined) {
    const set = new Set(parse("layers", on));
    for (const l of LAYERS) out[l] = set.has(l);
  }
  if (off !== undefined) for (const l of parse("no-layers", off)) out[l] = false;
  return out;
}

/** A one-line progress bar on a terminal, nothing elsewhere. */
function progressBar(stream: NodeJS.WriteStream, quiet: boolean): { update(frames: number, total: number): void; done(): void } {
  if (quiet || !stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  return {
    update(frames, total) {
      const now = Date.now();
      if (now - last < 100 && frames < total) return;
      last = now;
      const f = Math.min(1, frames / Math.max(1, total));
      const w = 30;
      stream.write(`\r[${"#".repeat(Math.round(f * w)).padEnd(w, ".")}] ${frames}/${total} frames`);
    },
    done() {
      stream.write("\n");
    },
  };
}

export const renderCommand: Command = {
  name: "render",
  summary: "draw a run's results on its video (boxes, tracks, depth and flow insets, caption) into an H.264 MP4",
  usage:
    "video-analysis render RUN_DIR --out preview.mp4 [--rate analysis|source] [--layers boxes,trails,depth,flow,caption] " +
    "[--no-layers flow] [--video V] [--crf 20] [--preset veryfast] [--quiet] [--json]",
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv, {
      out: { type: "string", value: "FILE", description: "the MP4 to write (required)" },
      rate: { type: "string", value: "RATE", description: "analysis: the analysed frames only, at the analysis rate; source: every frame of the video (default analysis)" },
      layers: { type: "string", value: "LIST", description: `the layers to draw, comma-separated, of ${LAYERS.join(",")} (default: every layer the run has artifacts for)` },
      "no-layers": { type: "string", value: "LIST", description: "layers not to draw, comma-separated (default: none)" },
      video: { type: "string", value: "FILE", description: "the run's video, when it is no longer where the manifest says (default: the manifest's path)" },
      crf: { type: "string", value: "N", description: "x264 constant rate factor, 0 (lossless) to 51 (default 20)" },
      preset: { type: "string", value: "NAME", description: "x264 preset, e.g. ultrafast, medium (default veryfast)" },
      quiet: { type: "boolean", default: false, description: "print nothing on success (no progress bar, no summary)" },
      json: { type: "boolean", default: false, description: "print one JSON object with the result instead of the text summary" },
    }, true);
    const [runDir, ...extra] = positionals;
    if (runDir === undefined) throw usageError(this, "RUN_DIR is required");
    if (extra.length > 0) throw usageError(this, `one RUN_DIR only, got also "${extra.join('", "')}"`);
    const out = required(this, "out", values.out);
    const rate = values.rate ?? "analysis";
    if (rate !== "analysis" && rate !== "source") throw usageError(this, `--rate must be analysis or source, got "${rate}"`);
    const crf = numberFlag("crf", values.crf, 20, { min: 0, max: 51 });
    const stop = stopOnSignals(undefined);
    const bar = progressBar(process.stderr, values.quiet || values.json);
    const { renderRun } = await import("../../render/render.js");
    try {
      const r = await renderRun(runDir, {
        out,
        rate,
        crf,
        layers: layerFlags(this, values.layers, values["no-layers"]),
        signal: stop.signal,
        onProgress: (p) => bar.update(p.frames, p.total),
        ...(values.video ? { video: values.video } : {}),
        ...(values.preset ? { preset: values.preset } : {}),
      });
      bar.done();
      if (values.json) console.log(JSON.stringify(r));
      else if (!values.quiet) console.log(`${r.out}: ${r.frames} frames ${r.width}x${r.height} at ${+r.fps.toFixed(3)} fps (${r.duration.toFixed(1)} s), layers ${r.layers.join(", ")}, ${r.decode} decode, the video's facts from the ${r.facts}, in ${(r.wall_ms / 1000).toFixed(1)} s`);
      return 0;
    } catch (e) {
      bar.done();
      if (stop.stoppedBy && e instanceof VideoAnalysisError && e.code === "CANCELLED") {
        if (stop.stoppedBy !== "SIGHUP") console.error(`video-analysis: ${e.toString()}`);
        return stop.exitStatus();
      }
      throw e;
    } finally {
      stop.release();
    }
  },
};
