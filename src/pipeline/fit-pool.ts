import type { ResizeMode } from "../catalog/types.js";
import { VideoAnalysisError } from "../errors.js";
import type { LetterboxInfo } from "../preprocess/letterbox.js";
import type { RgbImage } from "../preprocess/resize.js";
import { WorkerLink } from "../worker-link.js";
import type { FittedImage, Fitter } from "./frame.js";

/** A request to fit-worker.ts and its answer. */
export interface FitRequest {
  id: number;
  width: number;
  height: number;
  data: Uint8Array;
  mode: ResizeMode;
  size: number;
  pad: number;
  out: Uint8Array;
}
export type FitReply = { id: number; ok: true; letterbox: LetterboxInfo | undefined } | { id: number; ok: false; message: string };

/**
 * Worker threads that fit frames to the branches' inputs (resize, centre crop, letterbox), so that on a
 * machine with cores to spare this work leaves the thread that reads ffmpeg, makes the calls and writes
 * the artifacts. Frames and results stay in shared memory (FrameReader's `shared` frames, PixelPool
 * buffers): nothing is copied between threads. Calls go to the workers in turn. Idle workers do not keep
 * the process alive.
 */
export class FitPool implements Fitter {
  private readonly links: Array<WorkerLink<FitReply>> = [];
  private nextId = 1;
  private turn = 0;
  private closed = false;
  private failure: Error | undefined;

  constructor(workers: number) {
    if (!(Number.isInteger(workers) && workers >= 1)) throw new RangeError(`FitPool: workers must be a positive integer, got ${String(workers)}`);
    const file = new URL("./fit-worker.js", import.meta.url);
    const onMessage = (link: WorkerLink<FitReply>, msg: FitReply) => {
      const p = link.take(msg.id);
      if (!p) return;
      if (msg.ok) p.resolve(msg.letterbox);
      else p.reject(new VideoAnalysisError("INTERNAL", `fitting a frame failed: ${msg.message}`));
    };
    const onFailure = (e: Error) => {
      this.failure ??= new VideoAnalysisError("INTERNAL", `a fitting worker stopped: ${e.message}`, { cause: e });
      for (const l of this.links) l.failAll(this.failure);
    };
    for (let i = 0; i < workers; i++) this.links.push(new WorkerLink(file, null, onMessage, onFailure, () => this.closed));
  }

  accepts(frame: RgbImage): boolean {
    return !this.closed && !this.failure && frame.data.buffer instanceof SharedArrayBuffer;
  }

  async fit(frame: RgbImage, mode: ResizeMode, size: number, pad: number, out: Uint8Array): Promise<FittedImage> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new VideoAnalysisError("FAILED_PRECONDITION", "the fitting workers were closed");
    const id = this.nextId++;
    const link = this.links[this.turn++ % this.links.length]!;
    const req: FitRequest = { id, width: frame.width, height: frame.height, data: frame.data, mode, size, pad, out };
    const letterbox = await link.call<LetterboxInfo | undefined>(id, req);
    return { image: { width: letterbox?.width ?? size, height: letterbox?.height ?? size, channels: 3, data: out }, letterbox };
  }

  /** Stops the workers; fits still pending are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = new VideoAnalysisError("FAILED_PRECONDITION", "the fitting workers were closed");
    for (const l of this.links) l.failAll(closed);
    await Promise.all(this.links.map((l) => l.worker.terminate()));
  }
}
