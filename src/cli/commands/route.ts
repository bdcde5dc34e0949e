import { existsSync } from "node:fs";
import { allModels } from "../../catalog/index.js";
import { embeddedModelPath, loadProfile, serverModelName, tritonClientOptions, type Profile } from "../../profiles/index.js";
import { resolveModelMapping, type Routing, type VideoMetadata } from "../../routing/index.js";
import { probeVideo } from "../../video/index.js";
import { numberFlag, parseCommandArgs, required, usageError, type Command } from "../command.js";

/** What the backend has READY, as a predicate over server model names (for --check-ready). */
async function readiness(profile: Profile): Promise<(name: string) => boolean> {
  if (profile.backend.embedded) {
    const files = new Map(allModels().map((m) => [serverModelName(profile, m.name), embeddedModelPath(profile, m.name)]));
    return (name) => {
      const p = files.get(name);
      return p !== undefined && existsSync(p);
    };
  }
  const { TritonClient } = await import("../../triton/client.js");
  const client = await TritonClient.create(tritonClientOptions(profile));
  try {
    const ready = new Set((await client.repositoryIndex({ ready: true })).filter((m) => m.state === "READY").map((m) => m.name));
    return (name) => ready.has(name);
  } finally {
    await client.close();
  }
}

/** The mapping as an aligned table, one row per slot. */
export function formatRouting(r: Routing, profile: Profile, file: string): string {
  const v = r.video;
  const lines = [
    `profile  ${profile.name} (${file})`,
    `video    ${v.width}x${v.height}${v.rotation ? `, rotation ${v.rotation}` : ""} -> analysis ${r.analysis.width}x${r.analysis.height} (longer side ${r.analysis.longer_side})`,
    "",
  ];
  const rows = Object.entries(r.resolved_model_mapping).map(([slot, m]) => {
    const why = [m.reason];
    for (const f of m.fallbacks) why.push(`${f.from} ${f.because === "disabled" ? "disabled" : "not READY"} -> fallback ${f.to}`);
    if (m.letterbox) why.push(`letterbox ${m.letterbox.width}x${m.letterbox.height} + pad ${m.letterbox.pad_left}/${m.letterbox.pad_top}`);
    return [
      slot,
      m.model + (m.server_model !== m.model ? ` (server: ${m.server_model})` : ""),
      m.size ?? "-",
      m.input_size === null ? "-" : String(m.input_size),
      m.ready === null ? "-" : m.ready ? "yes" : "no",
      why.join("; "),
    ];
  });
  const head = ["slot", "model", "size", "input", "ready", "why"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  lines.push(line(head), ...rows.map(line));
  return lines.join("\n");
}

export const routeCommand: Command = {
  name: "route",
  summary: "show which model branch each component gets for a video under a profile (resolved_model_mapping)",
  usage: "video-analysis route --profile P (--video V | --width W --height H [--rotation R]) [--check-ready] [--json]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      profile: { type: "string", value: "FILE", description: "the YAML profile whose routing rules apply" },
      video: { type: "string", value: "FILE", description: "a video whose size (read with ffprobe) is routed" },
      width: { type: "string", value: "W", description: "a frame width to route, without a video (with --height)" },
      height: { type: "string", value: "H", description: "a frame height to route, without a video (with --width)" },
      rotation: { type: "string", value: "R", description: "display rotation of --width/--height: 0, 90, 180 or 270 (default 0)" },
      "check-ready": { type: "boolean", description: "ask the profile's backend which models are ready and route around those that are not" },
      json: { type: "boolean", description: "print the routing as one JSON object" },
    });
    const file = required(this, "profile", values.profile);
    const profile = await loadProfile(file);
    let video: VideoMetadata;
    if (values.video !== undefined) {
      if (values.width !== undefined || values.height !== undefined) {
        throw usageError(this, "give --video or --width/--height, not both");
      }
      // The same probe as `main`, so route and main agree on size, rotation and errors.
      const { width, height, rotation } = await probeVideo(values.video);
      video = { width, height, rotation };
    } else {
      if (values.width === undefined || values.height === undefined) {
        throw usageError(this, "give --video, or both --width and --height");
      }
      video = {
        width: numberFlag("width", values.width, 0, { min: 1 }),
        height: numberFlag("height", values.height, 0, { min: 1 }),
        rotation: numberFlag("rotation", values.rotation, 0),
      };
    }
    const ready = values["check-ready"] ? await readiness(profile) : undefined;
    const routing = resolveModelMapping(video, profile, ready ? { ready } : {});
    console.log(values.json ? JSON.stringify({ profile: profile.name, ...routing }, null, 2) : formatRouting(routing, profile, file));
    return 0;
  },
};
