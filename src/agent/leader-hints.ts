// Which node replica an agent dials next: the addresses it was given, and a
// leader address a replica of its node cell named when it refused the hello.
//
// A node cell of several replicas takes agents at its leader only; a follower
// ends the stream FAILED_PRECONDITION with the leader's address in the trailer
// meshlb-leader-address (docs/agent-protocol.md, "Which replica"). An agent
// given one address that lands on any replica (a Kubernetes Service) could not
// follow such a hint before: it went only to addresses it was given. Now, by
// default ('follow'), it does, under this rule:
// - the hint comes in a not-leader refusal from a replica that checked the hello
//   named its mesh and node cell (the refusal comes after that check), on the
//   same credentials: with TLS the hinted replica must present a certificate for
//   the hinted host name, as for any given address;
// - it must look like host:port (at most 255 characters);
// - at most one learned address at a time, at most MAX_REDIRECTS hints in a row
//   (a hint that leads back to a follower in an election ends in the backoff);
// - a learned address is forgotten as soon as a stream to it ends (refused,
//   broken, or the leader stopped): the agent goes back to its given addresses,
//   and a follower there names the new leader.
// 'given' keeps the strict rule: hints are followed only to given addresses.
import type { BackoffOptions } from './backoff.js';

/** After a follower names its leader, connect there this soon (ms); at most this many redirects in a row. */
export const LEADER_REDIRECT_MS = 20;
export const MAX_REDIRECTS = 3;

export type LeaderHints = 'follow' | 'given';

/** The agent's options on reconnecting (AgentOptions extends them). */
export interface ReconnectOptions {
  /** Reconnect backoff (full jitter). Defaults: 100 ms initial, 5 s max, x2. */
  backoff?: BackoffOptions;
  /**
   * 'follow' (default): go to the leader a follower names even when its address was not given (one at a time,
   * forgotten when its stream ends); 'given': only to addresses given in `address`.
   */
  leaderHints?: LeaderHints;
}

const HOST_PORT = /^[A-Za-z0-9._~\-[\]:%]+:[0-9]{1,5}$/;

/** Whether `hint` is a host:port an agent may dial. */
export const isHostPort = (hint: string): boolean => hint.length <= 255 && HOST_PORT.test(hint);

export class NodeAddresses {
  private index = 0;
  /** The one address learned from a hint, while the agent uses it. */
  private learnedAddress: string | undefined;
  /** Hints followed in a row (reset by a welcome or a plain reconnect). */
  private redirects = 0;

  constructor(
    readonly given: readonly string[],
    private readonly mode: LeaderHints = 'follow',
  ) {}

  /** The address to dial now. */
  get current(): string {
    return this.learnedAddress ?? this.given[this.index]!;
  }

  /** The current address was learned from a hint (not given). */
  get learned(): boolean {
    return this.learnedAddress !== undefined;
  }

  welcomed(): void {
    this.redirects = 0;
  }

  /**
   * A follower named `hint` as its leader: whether to go there next (then `current` is it). Given addresses are
   * always followed; others only in 'follow' mode and in the shape of host:port.
   */
  redirect(hint: string): boolean {
    if (hint === this.current || this.redirects >= MAX_REDIRECTS) return false;
    const at = this.given.indexOf(hint);
    if (at >= 0) {
      this.learnedAddress = undefined;
      this.index = at;
    } else if (this.mode === 'follow' && isHostPort(hint)) {
      this.learnedAddress = hint;
    } else return false;
    this.redirects++;
    return true;
  }

  /**
   * A stream ended with no hint to follow: the next given address (a learned one is forgotten: its
   * stream ended, so it is not the leader, or no longer). Returns the address forgotten, if any.
   */
  next(): string | undefined {
    this.redirects = 0;
    const forgotten = this.learnedAddress;
    this.learnedAddress = undefined;
    // Back from a learned address: the given one that named it first (it knows the leader now, or soon).
    if (forgotten === undefined && this.given.length > 1) this.index = (this.index + 1) % this.given.length;
    return forgotten;
  }
}
