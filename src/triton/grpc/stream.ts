import type { InferResult } from "../../backend/backend.js";
import { VideoAnalysisError, type ErrorCode } from "../../errors.js";
import { SERVICE } from "../proto.js";
import type { InferInput, ProtocolInferOptions, TransportError } from "../protocol.js";
import { inferRequest, inferResult } from "../wire.js";
import type { GrpcCall, GrpcChannel } from "./channel.js";
import { decodeModelStreamInferResponse, encodeModelInferRequest } from "./codec.js";

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
  shmOut: Record<string, unknown> | undefined;
  resolve(r: InferResult): void;
  reject(e: unknown): void;
}

/**
 * One ModelStreamInfer call. Each infer() writes a request and resolves with its response. Triton answers
 * a stream's requests in order, each as a ModelStreamInferResponse holding either the response or an
 * error_message; an error fails that request only, and the stream goes on.
 *
 * @example
 * const triton = await TritonClient.create({ url: process.env.TRITON_GRPC_URL ?? "localhost:8001" });
 * const stream = triton.stream(); // one gRPC stream: requests go out at once, answers come back in order
 * const grey = tensor("INPUT__0", "UINT8", [1, 640, 640, 3], new Uint8Array(640 * 640 * 3).fill(114));
 * const answers = await Promise.all([0, 1, 2].map(() => stream.infer("yolo11x_640", [grey])));
 * console.log(answers.map((a) => a.outputs.OUTPUT__0?.shape)); // [ [ 1, 84, 8400 ], [ 1, 84, 8400 ], [ 1, 84, 8400 ] ]
 * await stream.close();
 * await triton.close();
 */
export class InferStream {
  private readonly pending: Pending[] = [];
  private nextId = 0;
  private ended: VideoAnalysisError | undefined;
  private readonly call: GrpcCall;
  private closed: (() => void) | undefined;

  /** @internal TritonClient.stream() makes it. */
  constructor(channel: GrpcChannel, deadlineMs: number, toError: (e: TransportError) => VideoAnalysisError) {
    this.call = channel.start(`/${SERVICE}/ModelStreamInfer`, { deadlineMs }, {
      onMessage: (m) => this.onMessage(m),
      onEnd: (e) => {
        this.fail(e ? toError(e) : new VideoAnalysisError("UNAVAILABLE", "the server closed the inference stream; open a new one"));
        this.closed?.();
      },
    });
  }

  private onMessage(m: Buffer): void {
    let msg: ReturnType<typeof decodeModelStreamInferResponse>;
    try {
      msg = decodeModelStreamInferResponse(m);
    } catch (e) {
      this.pending.shift()?.reject(e);
      return;
    }
    const id = msg.response?.id;
    // Match by request id when the server echoes it, else the oldest request still waiting.
    const i = id ? Math.max(0, this.pending.findIndex((p) => p.id === id)) : 0;
    const p = this.pending.splice(i, 1)[0];
    if (!p) return;
    if (msg.error !== undefined) p.reject(new VideoAnalysisError(streamErrorCode(msg.error), `the server failed this stream request: ${msg.error}`, { model: p.model }));
    else {
      try {
        p.resolve(inferResult(p.model, msg.response ?? { model: "", version: "", id: "", outputs: [], raw: [] }, p.shmOut));
      } catch (e) {
        p.reject(e);
      }
    }
  }

  private fail(e: VideoAnalysisError): void {
    this.ended ??= e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  infer(model: string, inputs: InferInput[], options: ProtocolInferOptions = {}): Promise<InferResult> {
    if (this.ended) return Promise.reject(this.ended);
    const id = options.requestId || `s${this.nextId++}`;
    return new Promise<InferResult>((resolve, reject) => {
      this.pending.push({ id, model, shmOut: options.sharedMemoryOutputs, resolve, reject });
      this.call.write(encodeModelInferRequest(inferRequest(model, inputs, { ...options, requestId: id })));
    });
  }

  /** Ends the stream after the requests already sent are answered. */
  async close(): Promise<void> {
    if (this.ended) return;
    const done = new Promise<void>((res) => (this.closed = res));
    this.call.end();
    await done;
  }
}
