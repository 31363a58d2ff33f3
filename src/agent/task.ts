// The task object a handler receives. Built once per assignment on the hot
// path, so the costly parts (AbortController, labels record, decoded text) are
// created only if the handler asks for them.
import type { Dispatch, Label } from '../gen/meshlb/v1/task.js';
import { TaskCancelledError } from './errors.js';

export interface AgentTask {
  /** Task id (stable across attempts). */
  readonly id: string;
  /** Attempt number, from 1. A task can run more than once (at-least-once); use it, or the id, to be idempotent. */
  readonly attempt: number;
  readonly kind: string;
  readonly payload: Uint8Array;
  /** The task's labels as a record (last value wins for a repeated key). */
  readonly labels: Record<string, string>;
  /** Absolute deadline (unix ms), or undefined when the task has none. */
  readonly deadline: number | undefined;
  /** Per-attempt run timeout the submitter asked for (ms), 0 = the cell default. */
  readonly timeoutMs: number;
  /** The cell where the task was submitted. */
  readonly homeCell: string;
  /** Aborted when the node cancels this attempt, or the agent is closed. */
  readonly signal: AbortSignal;
  /** The payload as UTF-8 text. */
  text(): string;
  /** The payload parsed as JSON. */
  json<T = unknown>(): T;
}

/** What a handler may return: bytes, text (UTF-8), any other value (sent as JSON), or nothing. */
export type HandlerOutput = Uint8Array | string | object | number | boolean | null | undefined | void;

export type TaskHandler = (task: AgentTask) => Promise<HandlerOutput> | HandlerOutput;

const EMPTY: Buffer = Buffer.alloc(0);
const decoder = new TextDecoder();

function labelsToRecord(labels: readonly Label[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) out[l.key] = l.value;
  return out;
}

export function recordToLabels(rec: Record<string, string> | undefined): Label[] {
  if (!rec) return [];
  return Object.entries(rec).map(([key, value]) => ({ key, value: String(value) }));
}

export class RunningTask implements AgentTask {
  readonly id: string;
  readonly attempt: number;
  readonly kind: string;
  readonly payload: Uint8Array;
  readonly deadline: number | undefined;
  readonly timeoutMs: number;
  readonly homeCell: string;
  /** performance.now() when the handler was called. */
  readonly startedAt: number;
  /** Map key: `${id}#${attempt}`. */
  readonly key: string;
  cancelled = false;
  private ac: AbortController | undefined;
  private rawLabels: Label[];
  private labelsRec: Record<string, string> | undefined;

  constructor(d: Dispatch, key: string) {
    const spec = d.spec;
    this.id = d.taskId;
    this.attempt = d.attempt;
    this.key = key;
    this.kind = spec?.kind ?? '';
    this.payload = spec?.payload ?? EMPTY;
    this.deadline = spec && spec.deadlineUnixMs > 0 ? spec.deadlineUnixMs : undefined;
    this.timeoutMs = spec?.timeoutMs ?? 0;
    this.homeCell = d.homeCell;
    this.rawLabels = spec?.labels ?? [];
    this.startedAt = performance.now();
  }

  get signal(): AbortSignal {
    this.ac ??= new AbortController();
    return this.ac.signal;
  }

  get labels(): Record<string, string> {
    this.labelsRec ??= labelsToRecord(this.rawLabels);
    return this.labelsRec;
  }

  text(): string {
    return decoder.decode(this.payload);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  abort(reason: string): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.ac ??= new AbortController();
    this.ac.abort(new TaskCancelledError(reason));
  }
}

/** Handler output -> result bytes (no copy for Buffers and Uint8Arrays). */
export function encodeOutput(v: HandlerOutput): Buffer {
  if (v === undefined || v === null) return EMPTY;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.from(JSON.stringify(v) ?? 'null', 'utf8');
}
