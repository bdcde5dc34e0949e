/** A FitPool worker (fit-pool.ts): fits frames in shared memory into shared buffers, one request at a time. */
import { parentPort } from "node:worker_threads";
import type { FitReply, FitRequest } from "./fit-pool.js";
import { fitImage } from "./frame.js";

parentPort!.on("message", (req: FitRequest) => {
  let reply: FitReply;
  try {
    const f = fitImage({ width: req.width, height: req.height, channels: 3, data: req.data }, req.mode, req.size, req.pad, req.out);
    reply = { id: req.id, ok: true, letterbox: f.letterbox };
  } catch (e) {
    reply = { id: req.id, ok: false, message: (e as Error).message };
  }
  parentPort!.postMessage(reply);
});
