// One WatchMany call of the client's shared waiting path (result-stream.ts)
// and the ids it carries: ids added or dropped in one turn of the event loop
// go out in one message (up to MAX_IDS_PER_MESSAGE each), and a call left with
// nothing to watch half-closes after `lingerMs`, so the process may exit.
import { Metadata, type ClientDuplexStream, type status } from '@grpc/grpc-js';
import type { TaskServiceClient, WatchManyRequest, WatchManyResponse } from '../gen/meshlb/v1/task.js';
import { MeshClientError } from './errors.js';

const MAX_IDS_PER_MESSAGE = 1000;

/** Where a call's answers and its end go. */
export interface ConnHub {
  onResponse(conn: Conn, res: WatchManyResponse): void;
  onEnded(conn: Conn, err: MeshClientError): void;
}

/** One WatchMany call and the ids it carries. */
export class Conn {
  readonly ids = new Set<string>();
  private toAdd: string[] = [];
  private toDrop: string[] = [];
  private flushing = false;
  ending = false;
  ended = false;
  private linger: NodeJS.Timeout | undefined;
  private failure: MeshClientError | undefined;
  readonly call: ClientDuplexStream<WatchManyRequest, WatchManyResponse>;

  constructor(
    readonly address: string,
    hub: ConnHub,
    client: TaskServiceClient,
    private readonly lingerMs: number,
    private readonly allChanges: boolean,
  ) {
    this.call = client.watchMany(new Metadata());
    this.call.on('data', (res: WatchManyResponse) => hub.onResponse(this, res));
    this.call.on('error', (e) => (this.failure = MeshClientError.from(e)));
    this.call.on('status', (s: { code: status; details: string }) => {
      this.ended = true;
      clearTimeout(this.linger);
      const err = this.failure ?? new MeshClientError(s.code, s.details || 'watch stream ended');
      hub.onEnded(this, err);
    });
  }

  get room(): boolean {
    return !this.ending && !this.ended;
  }

  add(id: string): void {
    this.ids.add(id);
    this.toAdd.push(id);
    clearTimeout(this.linger);
    this.linger = undefined;
    this.schedule();
  }

  drop(id: string): void {
    if (!this.ids.delete(id)) return;
    this.toDrop.push(id);
    this.schedule();
  }

  /** An id answered (its record came, or an error entry): no more to send for it. */
  forget(id: string): void {
    this.ids.delete(id);
    this.idleCheck();
  }

  cancel(): void {
    this.ending = true;
    clearTimeout(this.linger);
    this.call.cancel();
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    if (this.ended || this.ending) return;
    const drop = this.toDrop.filter((id) => !this.ids.has(id));
    const add = this.toAdd.filter((id) => this.ids.has(id));
    this.toAdd = [];
    this.toDrop = [];
    for (let i = 0; i < Math.max(add.length, drop.length); i += MAX_IDS_PER_MESSAGE) {
      this.call.write({
        taskIds: add.slice(i, i + MAX_IDS_PER_MESSAGE),
        allChanges: this.allChanges,
        unwatchTaskIds: drop.slice(i, i + MAX_IDS_PER_MESSAGE),
      });
    }
    this.idleCheck();
  }

  private idleCheck(): void {
    if (this.ids.size > 0 || this.ending || this.ended || this.linger) return;
    this.linger = setTimeout(() => {
      this.linger = undefined;
      if (this.ids.size > 0 || this.ended) return;
      // Half-close: the cell ends the stream, as nothing is watched.
      this.ending = true;
      this.call.end();
    }, this.lingerMs);
    this.linger.unref();
  }
}
