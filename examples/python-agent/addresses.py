"""Which node replica the example agent dials next, and how long it waits first (docs/agent-protocol.md,
"Which replica" and "Refusals"), as the TypeScript SDK does (src/agent/leader-hints.ts, connection.ts).

A follower of the node cell refuses the hello naming its leader (trailer meshlb-leader-address). The agent
goes there at once if it was given that address, or, unless --leader-hints given, if the hint looks like
host:port: then it holds it as its one learned address until a stream to it ends, and goes back to its
given addresses (whose followers name the new leader). At most 3 hints in a row.
"""

import random
import re

BACKOFF_INITIAL_S, BACKOFF_MAX_S = 0.1, 5.0
MAX_REDIRECTS = 3
# A leader hint to an address not given is followed only if it looks like host:port.
HOST_PORT = re.compile(r"^[A-Za-z0-9._~\-\[\]:%]{1,249}:[0-9]{1,5}$")
# A node over its hello rate says when to come back (meshlb-retry-after-ms); taken up to this long.
MAX_RETRY_AFTER_S = 60.0


class Addresses:
    def __init__(self, given, follow_hints=True):
        self.given = given
        self.index = 0
        self.learned = None  # a leader address a follower named that was not given
        self.follow_hints = follow_hints
        self.redirects = 0

    def __len__(self):
        return len(self.given)

    @property
    def current(self):
        return self.learned or self.given[self.index]

    def welcomed(self):
        self.redirects = 0

    def redirect(self, hint):
        """Whether to go to the leader `hint` next (then it is `current`)."""
        if not hint or hint == self.current or self.redirects >= MAX_REDIRECTS:
            return False
        if hint in self.given:
            self.learned = None
            self.index = self.given.index(hint)
        elif self.follow_hints and HOST_PORT.match(hint):
            self.learned = hint
        else:
            return False
        self.redirects += 1
        return True

    def next(self):
        """A stream ended with no hint to follow: a learned address is forgotten, else the next given one."""
        self.redirects = 0
        if self.learned is not None:
            self.learned = None
        else:
            self.index = (self.index + 1) % len(self.given)


class Backoff:
    """Full-jitter exponential backoff, and a node's retry hint (ms, a string) waited out with a quarter of jitter."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.max_s = BACKOFF_INITIAL_S

    def next(self, retry_ms=None):
        wait = random.uniform(0, self.max_s)
        self.max_s = min(BACKOFF_MAX_S, self.max_s * 2)
        if retry_ms and retry_ms.isdigit():
            wait = max(wait, min(MAX_RETRY_AFTER_S, int(retry_ms) / 1000.0) * (1 + random.random() / 4))
        return wait


def trailer(err, key):
    try:
        for k, v in err.trailing_metadata() or ():
            if k == key:
                return v
    except Exception:
        pass
    return None
