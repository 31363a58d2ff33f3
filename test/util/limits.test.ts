// Status messages must survive the trip as a URI-encoded trailer: no lone surrogates, whatever
// cut or produced them (src/util/limits.ts, wellFormed and truncate).
import { describe, expect, it } from 'vitest';
import { toServiceError } from '../../src/util/errors.js';
import { truncate, wellFormed } from '../../src/util/limits.js';

const EMOJI = '\u{1F600}';

describe('status message text', () => {
  it('wellFormed replaces lone surrogates and keeps pairs', () => {
    expect(wellFormed(`a${EMOJI}b`)).toBe(`a${EMOJI}b`);
    expect(wellFormed('a\uD83Db')).toBe('a\uFFFDb');
    expect(wellFormed('\uDE00x\uD83D')).toBe('\uFFFDx\uFFFD');
    expect(() => encodeURI(wellFormed(`${EMOJI.slice(0, 1)}${EMOJI}${EMOJI.slice(1)}`))).not.toThrow();
  });

  it('truncate never cuts inside a surrogate pair', () => {
    for (let max = 30; max < 70; max++) {
      const cut = truncate(EMOJI.repeat(50), max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(() => encodeURI(cut)).not.toThrow();
    }
  });

  it("toServiceError's details always encode", () => {
    let parseError: unknown;
    try {
      JSON.parse(EMOJI);
    } catch (err) {
      parseError = err;
    }
    const details = toServiceError(parseError).details!;
    expect(details).toContain('\uFFFD');
    expect(() => encodeURI(details)).not.toThrow();
  });
});
