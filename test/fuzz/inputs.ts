// Request bytes for the fuzzer, built from a method's input descriptor with a
// seeded generator. Two classes, because the verdict differs: well-formed
// bytes (valid protobuf, however odd the values) must never get INTERNAL;
// malformed bytes may (grpc-js answers INTERNAL when it cannot decode a
// request of a service without the mesh's tolerant decoding).
//
// Well-formed: the empty message; "weird" messages (extreme integers, NaN and
// infinite doubles, unknown enum values, oversize and odd strings, strings the
// mesh knows such as its cell paths and replica ids, many repeated elements,
// oneof members set together, fields repeated, unknown fields, a length-
// delimited unknown field nested thousands deep). Malformed: random bytes, a
// valid message cut short, known fields with the wrong wire type, length
// prefixes far past the end, over-long varints, groups nested 50,000 deep,
// invalid UTF-8 in a string field, field number 0, wire types 6 and 7, an
// end-group with no start.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { Rng } from '../../src/util/rng.js';

export interface Input {
  readonly bytes: Uint8Array;
  readonly wellFormed: boolean;
  /** Which generator made it (for the report). */
  readonly kind: string;
}

const INT64 = ['9223372036854775807', '-9223372036854775808', '9007199254740993', '-1', '0', '1'];
const UINT64 = ['18446744073709551615', '9223372036854775808', '9007199254740993', '0', '1'];
const INT32 = [2147483647, -2147483648, -1, 0, 1];
const UINT32 = [4294967295, 2147483648, 0, 1];
const DOUBLES = [NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE, 1e21, -1e-300, 0.1];
const FLOATS = [NaN, Infinity, -Infinity, -0, 3.4028234663852886e38, 1.401298464324817e-45];
/** Lengths past every limit in src/util/limits.ts, and past HTTP/2's header-list size (64 KiB). */
const OVERSIZE = [129, 257, 301, 1025, 4097, 70_000];
/** Rarer: strings of megabytes (each costs real time on one shared event loop). */
const HUGE = [300_000, 1_100_000];
const ODD = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u202e\u202d',
  '😀'.repeat(40),
  '../../../etc/passwd',
  '%s%n%x',
  '\r\n\t',
  '{"a":1}',
  '//',
  '#',
  '/#0',
  'x'.repeat(128),
  'é'.repeat(200),
];
/** A message never holds more than this many string/bytes characters in all (messages stay under 4 MiB). */
const BUDGET = 1_500_000;
/** Nor more than this many fields and elements in all, nested ones included. */
const FIELDS = 20_000;
const MAX_DEPTH = 6;

export class InputMaker {
  private budget = BUDGET;
  private fields = FIELDS;

  constructor(
    private readonly rng: Rng,
    /** Strings the mesh knows (cell paths, replica ids, task ids, service names...). */
    private readonly dictionary: readonly string[],
    /** By field name, the values that field takes in the mesh (mesh -> its name, cell -> a path): they get past the first checks. */
    private readonly hints: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {}

  /** A well-formed input (valid protobuf of `desc`, however odd). */
  wellFormed(desc: DescMessage): Input {
    this.budget = BUDGET;
    this.fields = FIELDS;
    const r = this.rng.next();
    if (r < 0.1) return { bytes: new Uint8Array(0), wellFormed: true, kind: 'empty' };
    if (r < 0.15)
      return { bytes: this.nestedUnknown(this.rng.int(100, 3000)), wellFormed: true, kind: 'nested-unknown' };
    if (r < 0.25) return { bytes: this.message(desc, 0, true), wellFormed: true, kind: 'plain' };
    return { bytes: this.message(desc, 0, false), wellFormed: true, kind: 'weird' };
  }

  /** A malformed input for `desc` (bytes no strict protobuf decoder accepts as is). */
  malformed(desc: DescMessage): Input {
    this.budget = BUDGET;
    this.fields = FIELDS;
    const rng = this.rng;
    const field = desc.fields.length ? rng.pick(desc.fields) : undefined;
    const n = field?.number ?? rng.int(1, 20);
    const w = new BinaryWriter();
    const kind = rng.pick([
      'random',
      'truncated',
      'wrong-wire-type',
      'huge-length',
      'overlong-varint',
      'deep-groups',
      'bad-utf8',
      'field-zero',
      'bad-wire-type',
      'stray-end-group',
    ] as const);
    switch (kind) {
      case 'random':
        return { bytes: this.randomBytes(rng.pick([1, 2, 7, 64, 1000])), wellFormed: false, kind };
      case 'truncated': {
        const whole = this.message(desc, 0, false);
        if (whole.length < 2) return { bytes: Uint8Array.of(0x0a, 0x05, 0x61), wellFormed: false, kind };
        return { bytes: whole.subarray(0, rng.int(1, whole.length - 1)), wellFormed: false, kind };
      }
      case 'wrong-wire-type': {
        // A length-delimited field sent as a varint and a varint one as fixed32, and so on.
        const right = field ? wireTypeOf(field) : WireType.Varint;
        const wrong = rng.pick([WireType.Varint, WireType.Bit64, WireType.LengthDelimited, WireType.Bit32]);
        const t = wrong === right ? (right === WireType.Varint ? WireType.Bit32 : WireType.Varint) : wrong;
        w.tag(n, t);
        if (t === WireType.Varint) w.uint64('18446744073709551615');
        else if (t === WireType.Bit64) w.fixed64(1);
        else if (t === WireType.Bit32) w.fixed32(1);
        else w.bytes(this.randomBytes(5));
        return { bytes: w.finish(), wellFormed: false, kind };
      }
      case 'huge-length':
        w.tag(n, WireType.LengthDelimited).uint32(rng.pick([0x7fffffff, 0xfffffff0, 0x10000000, 1 << 22]));
        w.raw(this.randomBytes(8));
        return { bytes: w.finish(), wellFormed: false, kind };
      case 'overlong-varint':
        w.tag(n, WireType.Varint).raw(new Uint8Array(11).fill(0xff)).raw(Uint8Array.of(0x01));
        return { bytes: w.finish(), wellFormed: false, kind };
      case 'deep-groups': {
        const depth = 50_000;
        const out = new Uint8Array(depth * 2);
        for (let i = 0; i < depth; i++) out[i] = 0x0b; // field 1, start group
        for (let i = depth; i < depth * 2; i++) out[i] = 0x0c; // field 1, end group
        return { bytes: out, wellFormed: false, kind };
      }
      case 'bad-utf8': {
        const s = desc.fields.find((f) => f.fieldKind === 'scalar' && f.scalar === ScalarType.STRING);
        w.tag(s?.number ?? n, WireType.LengthDelimited).bytes(Uint8Array.of(0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80));
        return { bytes: w.finish(), wellFormed: false, kind };
      }
      case 'field-zero':
        return { bytes: Uint8Array.of(0x00, 0x01, 0x02), wellFormed: false, kind };
      case 'bad-wire-type':
        w.uint32(((n << 3) | rng.pick([6, 7])) >>> 0).raw(this.randomBytes(4));
        return { bytes: w.finish(), wellFormed: false, kind };
      case 'stray-end-group':
        w.tag(n, WireType.EndGroup);
        return { bytes: w.finish(), wellFormed: false, kind };
    }
  }

  /** A well-formed message. `plain`: sensible values (dictionary strings, small numbers), each field once. */
  message(desc: DescMessage, depth: number, plain: boolean): Uint8Array {
    const rng = this.rng;
    const w = new BinaryWriter();
    const fields = rng.shuffle([...desc.fields]);
    const usedOneofs = new Set<string>();
    for (const f of fields) {
      if (this.fields <= 0 || !rng.chance(plain ? 0.8 : 0.65)) continue;
      // Proto3 lets a oneof member follow another (the last wins); plain messages set one.
      if (plain && f.oneof) {
        if (usedOneofs.has(f.oneof.name)) continue;
        usedOneofs.add(f.oneof.name);
      }
      const times = !plain && f.fieldKind !== 'list' && rng.chance(0.1) ? 2 : 1;
      for (let i = 0; i < times; i++) this.field(w, f, depth, plain);
    }
    if (!plain && rng.chance(0.2)) this.unknownField(w);
    return w.finish();
  }

  private field(w: BinaryWriter, f: DescField, depth: number, plain: boolean): void {
    const rng = this.rng;
    this.fields--;
    switch (f.fieldKind) {
      case 'scalar':
        this.scalar(w.tag(f.number, scalarWire(f.scalar)), f.scalar, plain, f.name);
        return;
      case 'enum':
        w.tag(f.number, WireType.Varint).int32(this.enumValue(f.enum, plain));
        return;
      case 'message':
        if (depth >= MAX_DEPTH) return;
        w.tag(f.number, WireType.LengthDelimited).bytes(this.message(f.message, depth + 1, plain));
        return;
      case 'list': {
        if (f.listKind === 'message') {
          if (depth >= MAX_DEPTH) return;
          // Many elements at the top (a batch of 1,000 specs), a few below.
          const n = plain ? rng.int(0, 3) : rng.pick(depth === 0 ? [0, 1, 2, 5, 64, rng.int(100, 1000)] : [0, 1, 2, 5]);
          for (let i = 0; i < n && this.fields > 0; i++)
            w.tag(f.number, WireType.LengthDelimited).bytes(this.message(f.message, depth + 1, plain));
          return;
        }
        const count = Math.min(this.fields, plain ? rng.int(0, 3) : rng.pick([0, 1, 2, 5, 64, rng.int(100, 3000)]));
        this.fields -= count;
        const scalar = f.listKind === 'enum' ? ScalarType.INT32 : f.scalar;
        const value = (x: BinaryWriter) =>
          f.listKind === 'enum' ? x.int32(this.enumValue(f.enum, plain)) : this.scalar(x, scalar, plain, f.name);
        // Packed and unpacked are both valid for packable scalars; parsers must take either.
        const packable = scalarWire(scalar) !== WireType.LengthDelimited;
        if (packable && rng.chance(0.5)) {
          w.tag(f.number, WireType.LengthDelimited).fork();
          for (let i = 0; i < count; i++) value(w);
          w.join();
        } else {
          for (let i = 0; i < count && this.budget > 0; i++) value(w.tag(f.number, scalarWire(scalar)));
        }
        return;
      }
      case 'map': {
        const count = plain ? rng.int(0, 2) : rng.pick([0, 1, 3, 100]);
        for (let i = 0; i < count; i++) {
          w.tag(f.number, WireType.LengthDelimited).fork();
          this.scalar(w.tag(1, scalarWire(f.mapKey)), f.mapKey, plain);
          if (f.mapKind === 'scalar') this.scalar(w.tag(2, scalarWire(f.scalar)), f.scalar, plain);
          else if (f.mapKind === 'enum') w.tag(2, WireType.Varint).int32(this.enumValue(f.enum, plain));
          else if (depth < MAX_DEPTH)
            w.tag(2, WireType.LengthDelimited).bytes(this.message(f.message, depth + 1, plain));
          w.join();
        }
        return;
      }
    }
  }

  private scalar(w: BinaryWriter, t: ScalarType, plain: boolean, field = ''): BinaryWriter {
    const rng = this.rng;
    switch (t) {
      case ScalarType.DOUBLE:
        return w.double(plain ? rng.int(0, 1000) : rng.pick(DOUBLES));
      case ScalarType.FLOAT:
        return w.float(plain ? rng.int(0, 1000) : rng.pick(FLOATS));
      case ScalarType.INT64:
        return w.int64(plain ? rng.int(0, 1000) : rng.pick(INT64));
      case ScalarType.SINT64:
        return w.sint64(plain ? rng.int(0, 1000) : rng.pick(INT64));
      case ScalarType.SFIXED64:
        return w.sfixed64(plain ? rng.int(0, 1000) : rng.pick(INT64));
      case ScalarType.UINT64:
        return w.uint64(plain ? rng.int(0, 1000) : rng.pick(UINT64));
      case ScalarType.FIXED64:
        return w.fixed64(plain ? rng.int(0, 1000) : rng.pick(UINT64));
      case ScalarType.INT32:
        return w.int32(plain ? rng.int(0, 1000) : rng.pick(INT32));
      case ScalarType.SINT32:
        return w.sint32(plain ? rng.int(0, 1000) : rng.pick(INT32));
      case ScalarType.SFIXED32:
        return w.sfixed32(plain ? rng.int(0, 1000) : rng.pick(INT32));
      case ScalarType.UINT32:
        return w.uint32(plain ? rng.int(0, 1000) : rng.pick(UINT32));
      case ScalarType.FIXED32:
        return w.fixed32(plain ? rng.int(0, 1000) : rng.pick(UINT32));
      case ScalarType.BOOL:
        // A varint of 2 is a valid true (decoders take any non-zero).
        return plain || rng.chance(0.8) ? w.bool(rng.chance(0.5)) : w.uint32(2);
      case ScalarType.STRING:
        return w.string(this.text(plain, field));
      case ScalarType.BYTES: {
        const big = !plain && rng.chance(0.1) && this.budget > 1_000_000;
        const len = big ? 1_000_000 : rng.int(0, 64);
        this.budget -= len;
        return w.bytes(this.randomBytes(len));
      }
    }
  }

  private text(plain: boolean, field: string): string {
    const rng = this.rng;
    const hint = this.hints.get(field);
    if (hint?.length && rng.chance(plain ? 0.9 : 0.5)) return rng.pick(hint);
    const r = rng.next();
    if (plain || r < 0.45) return this.dictionary.length ? rng.pick(this.dictionary) : '';
    if (r < 0.65) return rng.pick(ODD);
    const len = rng.chance(0.1) ? rng.pick(HUGE) : rng.pick(OVERSIZE);
    if (len > this.budget) return rng.pick(ODD);
    this.budget -= len;
    // Oversize strings that start like a known one reach further into the handlers.
    const head = this.dictionary.length && rng.chance(0.5) ? rng.pick(this.dictionary) : '';
    return (head + rng.pick(['x', '/', '#', 'é'])).padEnd(len, 'x');
  }

  private enumValue(e: DescEnum, plain: boolean): number {
    const rng = this.rng;
    if (plain || rng.chance(0.6)) return rng.pick(e.values).number;
    // Proto3 enums are open: unknown numbers, negative ones included, are valid on the wire.
    return rng.pick([-1, 12345, 2147483647, -2147483648]);
  }

  private unknownField(w: BinaryWriter): void {
    const n = this.rng.pick([99, 1000, 536870911]);
    const t = this.rng.pick([WireType.Varint, WireType.Bit64, WireType.LengthDelimited, WireType.Bit32]);
    w.tag(n, t);
    if (t === WireType.Varint) w.uint64('18446744073709551615');
    else if (t === WireType.Bit64) w.fixed64(7);
    else if (t === WireType.Bit32) w.fixed32(7);
    else w.bytes(this.randomBytes(16));
  }

  /** Field 99 holding field 99 holding ... `depth` deep: valid (an unknown field is skipped whole). */
  private nestedUnknown(depth: number): Uint8Array {
    let inner: Uint8Array = this.randomBytes(4);
    for (let i = 0; i < depth; i++) inner = new BinaryWriter().tag(99, WireType.LengthDelimited).bytes(inner).finish();
    return inner;
  }

  randomBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.rng.next() * 256);
    return out;
  }
}

function scalarWire(t: ScalarType): WireType {
  switch (t) {
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    default:
      return WireType.Varint;
  }
}

function wireTypeOf(f: DescField): WireType {
  if (f.fieldKind === 'scalar') return scalarWire(f.scalar);
  if (f.fieldKind === 'enum') return WireType.Varint;
  return WireType.LengthDelimited;
}
