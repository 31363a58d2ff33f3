// gRPC's message framing on HTTP/2 (the "Length-Prefixed-Message" of the
// gRPC wire protocol): one byte of flags (bit 0: compressed), four bytes of
// big-endian length, then the message. Used by the lean client
// (grpc-h2-client.ts) and the lean server side of the hot streams
// (grpc-h2-server-call.ts).
//
// Bounded: a message longer than the reader's maximum is refused from its
// header, before its body is buffered, so a reader holds at most one
// message of at most that size plus a header.

/** A frame the reader refuses; `code` is the gRPC status the call ends with. */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(
    message: string,
    readonly code: 'RESOURCE_EXHAUSTED' | 'INTERNAL',
    /** For a message over the limit: its length and the limit (a server words its refusal its own way). */
    readonly sizes?: { readonly length: number; readonly max: number },
  ) {
    super(message);
  }
}

export const FRAME_HEADER_BYTES = 5;

/** `payload` framed as one uncompressed gRPC message. */
export function frameMessage(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * A serializer that can also write its message already framed (one Buffer, one copy: src/mesh/wire-codec.ts
 * for the link, agent and submit streams). grpc-js calls it as a plain serializer and never sees `framed`.
 */
export type FramingSerializer<T> = ((m: T) => Buffer) & { readonly framed?: (m: T) => Buffer };

/** `plain` with its framed variant attached. */
export function withFramed<T>(plain: (m: T) => Buffer, framed: (m: T) => Buffer): FramingSerializer<T> {
  return Object.assign(plain, { framed });
}

/** `m` serialized and framed: in one go when `serialize` has a framed variant, else serialized, then framed. */
export function frameOf<T>(serialize: (m: T) => Uint8Array, m: T): Buffer {
  const framed = (serialize as FramingSerializer<T>).framed;
  return framed !== undefined ? framed(m) : frameMessage(serialize(m));
}

/**
 * Splits a byte stream into gRPC messages, whatever the chunking: a message
 * may come in many chunks and a chunk may hold many messages.
 */
export class Deframer {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  /** Length of the message being read after its header; -1 while reading a header. */
  private bodyLength = -1;
  /** Its bytes so far, when it spans chunks (allocated only then). */
  private body: Buffer | undefined;
  private bodyHave = 0;

  constructor(
    private readonly maxMessageBytes: number,
    /** Why a compressed message is refused (the reader takes identity encoding only). */
    private readonly compressedDetails = 'received a compressed message; this client accepts only identity encoding',
  ) {}

  /** The whole messages completed by `chunk`, in order; throws FrameError (the stream is then unusable). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    for (;;) {
      if (this.bodyLength < 0) {
        if (i >= chunk.length) return out;
        const n = Math.min(FRAME_HEADER_BYTES - this.headerHave, chunk.length - i);
        // A header whole in this chunk is read in place (the usual case), else collected.
        if (this.headerHave === 0 && n === FRAME_HEADER_BYTES) {
          this.startBody(chunk[i]!, readUInt32BE(chunk, i + 1));
        } else {
          this.header.set(chunk.subarray(i, i + n), this.headerHave);
          this.headerHave += n;
          if (this.headerHave < FRAME_HEADER_BYTES) return out;
          this.startBody(this.header[0]!, this.header.readUInt32BE(1));
        }
        i += n;
        this.headerHave = 0;
      }
      const need = this.bodyLength - this.bodyHave;
      const n = Math.min(need, chunk.length - i);
      if (this.bodyHave === 0 && n === need) {
        // The whole message in this chunk: no copy.
        out.push(chunk.subarray(i, i + n));
        i += n;
      } else {
        if (n === 0) return out;
        this.body ??= Buffer.allocUnsafe(this.bodyLength);
        this.body.set(chunk.subarray(i, i + n), this.bodyHave);
        this.bodyHave += n;
        i += n;
        if (this.bodyHave < this.bodyLength) return out;
        out.push(this.body);
      }
      this.bodyLength = -1;
      this.body = undefined;
      this.bodyHave = 0;
    }
  }

  /** Bytes of a message begun and not finished (a stream that ends here was cut). */
  get partial(): boolean {
    return this.headerHave > 0 || this.bodyLength >= 0;
  }

  private startBody(flags: number, length: number): void {
    if ((flags & 1) !== 0) throw new FrameError(this.compressedDetails, 'INTERNAL');
    if (length > this.maxMessageBytes)
      throw new FrameError(
        `Received message larger than max (${length} vs. ${this.maxMessageBytes})`,
        'RESOURCE_EXHAUSTED',
        { length, max: this.maxMessageBytes },
      );
    this.bodyLength = length;
  }
}

function readUInt32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}
