import type { ByteTrackState } from "../../detections/byte-track.js";
import type { Detections } from "../../detections/detections.js";
import { yoloEnd2EndOutputs } from "../../catalog/index.js";
import { VideoAnalysisError } from "../../errors.js";
import type { ArtifactSink } from "../../pipeline/artifact.js";
import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext, RunEnd } from "../../pipeline/component.js";
import { DetectionsArtifact, MOT_FILE, writeMotArtifact } from "./artifact.js";
import { DetectionsComponent, DetectionTracker } from "./detections.js";

declare module "../../pipeline/pipeline.js" {
  interface ComponentResults {
    /** core_object_detections, tracked when the profile's tracker is enabled. */
    detections?: Detections;
  }
}

/** core_object_detections: YOLO per frame, ByteTrack in frame order, detections.npz (and mot.txt with output.mot). */
export class DetectionsAnalyzer implements Analyzer<Detections> {
  readonly name = "core_object_detections";
  readonly key = "detections";
  constructor(
    readonly component: DetectionsComponent,
    readonly tracker: DetectionTracker,
  ) {}

  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<Detections> {
    return this.component.analyze(ctx, signal);
  }

  inOrder(d: Detections, size: { width: number; height: number }): Detections {
    return this.tracker.update(d, size.width, size.height);
  }

  state(): ByteTrackState | null {
    return this.tracker.state();
  }

  restore(s: unknown): void {
    this.tracker.restore((s ?? null) as ByteTrackState | null);
  }

  artifact(a: ArtifactSetup): Promise<DetectionsArtifact> {
    return DetectionsArtifact.create(a.runDir, a.sourceSize, undefined, a.options);
  }

  async finishRun(sink: ArtifactSink, end: RunEnd) {
    if (!end.profile.output.mot) return [];
    return [{ record: await writeMotArtifact(end.runDir, sink as DetectionsArtifact, end.frameNumber), file: MOT_FILE }];
  }
}

export const detections: Component = {
  name: "core_object_detections",
  key: "detections",
  slots: ["core_object_detections"],
  files: ["core_object_detections/detections.npz"],
  optionalFiles: [MOT_FILE],
  contract(cm, profile, backend) {
    const format = profile.components.core_object_detections?.output_format ?? "raw";
    if (format !== "end2end") return { contract: cm.ensemble, format };
    if (backend !== "triton") {
      throw new VideoAnalysisError(
        "UNIMPLEMENTED",
        "components.core_object_detections.output_format end2end needs a Triton End2End engine (NMS on the server); the embedded backend runs raw YOLO exports: set output_format: raw",
        { model: cm.name },
      );
    }
    return { contract: { inputs: cm.ensemble.inputs, outputs: yoloEnd2EndOutputs() }, format };
  },
  async open(s: ComponentSetup) {
    const m = s.model("core_object_detections");
    if (!m) return undefined;
    const d = s.profile.components.core_object_detections!;
    return new DetectionsAnalyzer(new DetectionsComponent(m, d.detection, d.output_format), new DetectionTracker(d.tracker, s.fps));
  },
};
