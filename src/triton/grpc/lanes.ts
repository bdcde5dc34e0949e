/**
 * ModelInfer requests carried on open ModelStreamInfer streams ("lanes"), one request per lane at a time.
 * Every unary call is a new HTTP/2 stream: headers out, headers and trailers back, and in Node a full
 * stream object made and torn down. On a lane a request is one DATA write and its answer one message,
 * which halves the client's CPU for a small request (one that names shared memory) and cuts it by a third
 * for a 300 KB frame (bench client; the figures are in the README). Answers are the same messages.
 */
import { listenAbort } from "../../errors.js";
import { SERVICE } from "../proto.js";
import { TransportError, type CallOptions } from "../protocol.js";
import type { GrpcCall, GrpcChannel } from "./channel.js";
import { firstRawOffset } from "./codec.js";

const STREAM = `/${SERVICE}/ModelStreamInfer`;
/** Lanes kept open per endpoint while idle; more are opened while more requests are in flight. */
const MAX_IDLE = 32;

/**
 * Where a ModelStreamInferResponse's infer_response (field 2) holds its first raw output: inside the
 * nested message, after field 2's tag and length.
 */
function streamRawOffset(head: Buffer): number {
  if (head[0] !== 0x12) return -1;
  let pos = 1;
  for (let i = 0; i < 5 && pos < head.length; i++) if (!(head[pos++]! & 0x80)) {
    const inner = firstRawOffset(head.subarray(pos));
    return inner < 0 ? -1 : pos + inner;
  }
  return -1;
}

class Lane {
  private readonly call: GrpcCall;
  private waiting: { resolve(m: Buffer): void; reject(e: TransportError): void } | undefined;
  dead = false;
  /** Why the stream ended, for a send on a lane that died before it. */
  private ended: TransportError | undefined;

  constructor(channel: GrpcChannel, readonly connection: number, private readonly onDead: (l: Lane) => void) {
    this.call = channel.start(STREAM, { deadlineMs: 0, connection, align: streamRawOffset }, {
      onMessage: (m) => {
        const w = this.waiting;
        this.waiting = undefined;
        // An answer nobody waits for (a model that answers more than once): the lane is out of step.
        if (!w) return this.kill();
        this.call.keepAlive(false);
        w.resolve(m);
      },
      onEnd: (e) => {
        this.dead = true;
        this.ended = e;
        this.onDead(this);
        const w = this.waiting;
        this.waiting = undefined;
        w?.reject(e ?? new TransportError("UNAVAILABLE", "the server closed the inference stream", { grpc: 14 }));
      },
    });
    this.call.keepAlive(false);
  }

  /** Sends one request and waits for its answer, within the deadline; a lane that timed out is closed. */
  send(parts: readonly Uint8Array[], o: CallOptions): Promise<Buffer> {
    // A stream that could not even start (no connection, bad TLS material) ended in its constructor.
    if (this.dead) return Promise.reject(this.ended ?? new TransportError("UNAVAILABLE", "the inference stream closed", { grpc: 14 }));
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
      };
      const stop = (e: TransportError) => {
        if (!this.waiting) return;
        this.waiting = undefined;
        done();
        this.kill();
        reject(e);
      };
      const onAbort = () => stop(new TransportError("CANCELLED", "cancelled by the caller"));
      this.waiting = {
        resolve: (m) => {
          done();
          resolve(m);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      if (o.deadlineMs > 0) timer = setTimeout(() => stop(new TransportError("DEADLINE_EXCEEDED", "Deadline exceeded")), o.deadlineMs);
      if (o.signal) {
        if (o.signal.aborted) return onAbort();
        listenAbort(o.signal, onAbort);
      }
      this.call.keepAlive(true);
      this.call.write(parts);
    });
  }

  kill(): void {
    if (this.dead) return;
    this.dead = true;
    this.call.cancel();
  }

  close(): void {
    if (!this.dead) this.call.end();
  }
}

/** Lanes per endpoint, taken round robin over the endpoints. */
export class Lanes {
  private readonly idle: Lane[][];
  private next = 0;
  private closed = false;

  constructor(private readonly channel: GrpcChannel) {
    this.idle = Array.from({ length: channel.size }, () => []);
  }

  /** One request's answer (a ModelStreamInferResponse message). */
  async send(parts: readonly Uint8Array[], o: CallOptions): Promise<Buffer> {
    const connection = this.next++ % this.idle.length;
    const idle = this.idle[connection]!;
    let lane = idle.pop();
    while (lane?.dead) lane = idle.pop();
    lane ??= new Lane(this.channel, connection, (l) => {
      const i = idle.indexOf(l);
      if (i >= 0) idle.splice(i, 1);
    });
    const answer = await lane.send(parts, o);
    if (this.closed || lane.dead || idle.length >= MAX_IDLE) lane.close();
    else idle.push(lane);
    return answer;
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle) for (const l of list.splice(0)) l.close();
  }
}
