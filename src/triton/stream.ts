import type * as grpc from "@grpc/grpc-js";
import type { InferOptions, InferResult } from "../backend/backend.js";
import { VideoAnalysisError, type ErrorCode } from "../errors.js";
import { decodeInferResponse, encodeInferRequest, type InferInput } from "./wire.js";

/**
 * A stream error carries only Triton's message, no status. The messages Triton uses for an unknown model
 * and for a malformed request are stable, so those get the status a unary call would have had.
 */
function streamErrorCode(message: string): ErrorCode {
  if (/unknown model|has no available versions/i.test(message)) return "NOT_FOUND";
  if (/unexpected shape|data-type is|byte size mismatch|unexpected inference (input|output)|expected \d+ inputs/i.test(message)) return "INVALID_ARGUMENT";
  return "UNKNOWN";
}

interface Pending {
  id: string;
  model: string;
  resolve(r: InferResult): void;
  reject(e: unknown): void;
}

/**
 * One ModelStreamInfer call. Each infer() writes a request and resolves with its response. Triton answers
 * a stream's requests in order, each as a ModelStreamInferResponse holding either the response or an
 * error_message; an error fails that request only, and the stream goes on.
 */
export class InferStream {
  private readonly pending: Pending[] = [];
  private nextId = 0;
  private ended: VideoAnalysisError | undefined;

  constructor(private readonly call: grpc.ClientDuplexStream<unknown, any>, toError: (e: unknown) => VideoAnalysisError) {
    call.on("data", (msg: { error_message?: string; infer_response?: any }) => this.onMessage(msg));
    call.on("error", (e) => this.fail(toError(e)));
    call.on("end", () => this.fail(new VideoAnalysisError("UNAVAILABLE", "the server closed the inference stream; open a new one")));
  }

  private onMessage(msg: { error_message?: string; infer_response?: any }): void {
    const id: string | undefined = msg.infer_response?.id;
    // Match by request id when the server echoes it, else the oldest request still waiting.
    const i = id ? Math.max(0, this.pending.findIndex((p) => p.id === id)) : 0;
    const p = this.pending.splice(i, 1)[0];
    if (!p) return;
    if (msg.error_message) p.reject(new VideoAnalysisError(streamErrorCode(msg.error_message), `the server failed this stream request: ${msg.error_message}`, { model: p.model }));
    else {
      try {
        p.resolve(decodeInferResponse(p.model, msg.infer_response ?? {}));
      } catch (e) {
        p.reject(e);
      }
    }
  }

  private fail(e: VideoAnalysisError): void {
    this.ended ??= e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  infer(model: string, inputs: InferInput[], options: InferOptions = {}): Promise<InferResult> {
    if (this.ended) return Promise.reject(this.ended);
    const id = options.requestId || `s${this.nextId++}`;
    return new Promise<InferResult>((resolve, reject) => {
      this.pending.push({ id, model, resolve, reject });
      this.call.write(encodeInferRequest(model, inputs, { ...options, requestId: id }));
    });
  }

  /** Ends the stream after the requests already sent are answered. */
  async close(): Promise<void> {
    const waiting = this.pending.map((p) => new Promise<void>((res) => {
      const { resolve, reject } = p;
      p.resolve = (r) => { resolve(r); res(); };
      p.reject = (e) => { reject(e); res(); };
    }));
    this.call.end();
    await Promise.all(waiting);
  }
}
