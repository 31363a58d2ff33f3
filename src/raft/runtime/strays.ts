// Messages from the network that are not for the core. The core trusts a
// message's `from`: one claiming to come from the receiver itself, addressed
// to another replica, or from an id no replica of the group can have is
// misrouted or forged, and must not move the term or name a leader.
import type { Message, NodeId } from '../core/types.js';
import type { RaftLogger } from '../logger.js';
import type { RaftClock } from './clock.js';

export class StrayFilter {
  private loggedAt = -Infinity;

  constructor(
    private readonly self: NodeId,
    private readonly isPeerId: (id: NodeId) => boolean,
    private readonly clock: RaftClock,
    private readonly logger: RaftLogger,
  ) {}

  /** Whether `m` goes to the core; a stray is logged, one line a second at most (a flood must not become one of logs). */
  admits(m: Message): boolean {
    const why = this.reason(m);
    if (!why) return true;
    const now = this.clock.now();
    if (now - this.loggedAt >= 1000) {
      this.loggedAt = now;
      this.logger.warn({ type: m.type, term: m.term, why }, 'dropping raft message from the network');
    }
    return false;
  }

  private reason(m: Message): string {
    if (m.from === this.self) return 'claims to come from this replica';
    if (m.to !== this.self) return 'is addressed to another replica';
    if (!this.isPeerId(m.from))
      return `comes from ${JSON.stringify(m.from.slice(0, 64))}, not a replica id of this group`;
    return '';
  }
}
