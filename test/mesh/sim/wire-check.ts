// The simulator's check that what a stream writes is what the writer holds.
//
// A cell relays dispatches and results as the bytes it received
// (src/mesh/wire-codec.ts): correct only while nothing changes a decoded
// dispatch, spec or result in place, since such a change would be dropped on
// the wire without a sound. Each message written here is decoded again by the
// generated code and compared, as JSON, with the object it was written from;
// a difference is a `wire` violation. It costs about a third more run time,
// so sim.ts turns it on for half of the seeds.
import { ConnectResponse } from '../../../src/gen/meshlb/v1/agent.js';
import { OpenRequest, OpenResponse } from '../../../src/gen/meshlb/v1/link.js';
import { AGENT_RESPONSE_CODEC, LINK_REQUEST_CODEC, LINK_RESPONSE_CODEC } from '../../../src/mesh/wire-codec.js';
import type { Codec } from './net.js';

interface Generated<M> {
  decode(b: Uint8Array): M;
  toJSON(m: M): unknown;
}

export interface WireCodecs {
  readonly linkRequest: Codec<OpenRequest>;
  readonly linkResponse: Codec<OpenResponse>;
  readonly agentResponse: Codec<ConnectResponse>;
}

/** The codecs the product uses, unchecked. */
export const PRODUCT_CODECS: WireCodecs = {
  linkRequest: LINK_REQUEST_CODEC,
  linkResponse: LINK_RESPONSE_CODEC,
  agentResponse: AGENT_RESPONSE_CODEC,
};

function checked<M>(codec: Codec<M>, gen: Generated<M>, name: string, report: (what: string) => void): Codec<M> {
  return {
    decode: (b) => codec.decode(b),
    encode: (m) => {
      const bytes = codec.encode(m).finish();
      const written = JSON.stringify(gen.toJSON(gen.decode(bytes)));
      const held = JSON.stringify(gen.toJSON(m));
      if (written !== held) {
        const what = (m as { msg?: { $case?: string } }).msg?.$case ?? '?';
        report(`${name} ${what}: the bytes written differ from the object (a relayed item changed in place?)`);
      }
      return { finish: () => bytes };
    },
  };
}

/** The product's codecs, each write checked against its object; differences go to `report`. */
export function checkedCodecs(report: (what: string) => void): WireCodecs {
  return {
    linkRequest: checked(LINK_REQUEST_CODEC, OpenRequest, 'OpenRequest', report),
    linkResponse: checked(LINK_RESPONSE_CODEC, OpenResponse, 'OpenResponse', report),
    agentResponse: checked(AGENT_RESPONSE_CODEC, ConnectResponse, 'ConnectResponse', report),
  };
}
