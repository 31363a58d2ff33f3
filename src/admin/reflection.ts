// gRPC server reflection (grpc.reflection.v1 and v1alpha) with descriptors a
// strict descriptor library accepts, so `grpcurl -plaintext HOST:PORT list`,
// `describe` and calls by name work with no .proto files.
//
// Why not @grpc/reflection as is: it serves what @grpc/proto-loader emits
// (protobufjs' descriptor output), which merges files per package into
// synthetic files, leaves type names relative ("Statuses") and names map
// entries after the field instead of `<Field>Entry`. Strict readers (grpcurl
// 1.9 via Go's protodesc) reject grpc.health.v1.HealthListResponse for that,
// and then nothing in the file works, Health/Check included.
//
// So ./descriptors.ts builds FileDescriptorProtos from the .proto sources as
// protoc would; here we check them with @bufbuild/protobuf's createFileRegistry
// plus validateFileDescriptors (./descriptor-check.ts: the protodesc rules the
// trap is about), and serve the reflection protocol from that registry.
// test/admin/reflection.test.ts proves it over a real gRPC connection, and that the descriptors equal what
// buf (a protoc-compatible compiler) builds from the same files.
import * as grpc from '@grpc/grpc-js';
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type FileRegistry,
  type MessageShape,
} from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { validateFileDescriptors } from './descriptor-check.js';
import { buildFileDescriptors } from './descriptors.js';
import { clip, LIMITS, overLimit } from '../util/limits.js';

export { buildFileDescriptors, jsonName, mapEntryName } from './descriptors.js';
export { validateFileDescriptors } from './descriptor-check.js';
export { defaultProtoSources, repoProtoDir, type ProtoSource } from './proto-sources.js';

/** Everything reflection serves, built and checked once per process. */
export interface DescriptorPool {
  readonly files: readonly FileDescriptorProto[];
  readonly encoded: ReadonlyMap<string, Uint8Array>;
  readonly registry: FileRegistry;
  /** Fully qualified symbol (no leading dot) → file name. */
  readonly symbols: ReadonlyMap<string, string>;
  /** Every service, fully qualified. */
  readonly services: readonly string[];
}

let pool: DescriptorPool | undefined;

export function descriptorPool(): DescriptorPool {
  pool ??= makePool(buildFileDescriptors());
  return pool;
}

export function makePool(files: FileDescriptorProto[]): DescriptorPool {
  const problems = validateFileDescriptors(files);
  if (problems.length) throw new Error(`invalid descriptors:\n${problems.join('\n')}`);
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  const symbols = new Map<string, string>();
  const services: string[] = [];
  const addMsg = (file: string, scope: string, m: DescriptorProto) => {
    const n = scope ? `${scope}.${m.name}` : m.name;
    symbols.set(n, file);
    for (const f of m.field) symbols.set(`${n}.${f.name}`, file);
    for (const o of m.oneofDecl) symbols.set(`${n}.${o.name}`, file);
    for (const e of m.enumType) addEnum(file, n, e);
    for (const nested of m.nestedType) addMsg(file, n, nested);
  };
  const addEnum = (file: string, scope: string, e: EnumDescriptorProto) => {
    const n = scope ? `${scope}.${e.name}` : e.name;
    symbols.set(n, file);
    // enum values live in the enclosing scope
    for (const v of e.value) symbols.set(scope ? `${scope}.${v.name}` : v.name, file);
  };
  for (const f of files) {
    for (const m of f.messageType) addMsg(f.name, f.package, m);
    for (const e of f.enumType) addEnum(f.name, f.package, e);
    for (const s of f.service) {
      const n = f.package ? `${f.package}.${s.name}` : s.name;
      symbols.set(n, f.name);
      services.push(n);
      for (const m of s.method) symbols.set(`${n}.${m.name}`, f.name);
    }
  }
  return {
    files,
    encoded: new Map(files.map((f) => [f.name, toBinary(FileDescriptorProtoSchema, f)])),
    registry,
    symbols,
    services: services.sort(),
  };
}

/** A grpc-js method definition whose messages are (de)serialized by @bufbuild/protobuf. */
function bidi<I extends DescMessage, O extends DescMessage>(
  path: string,
  input: I,
  output: O,
): grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b) => fromBinary(input, b),
    responseSerialize: (m) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b) => fromBinary(output, b),
  };
}

/** The transitive dependencies of `name`, the file itself first. */
function withDeps(p: DescriptorPool, name: string): Uint8Array[] {
  const byName = new Map(p.files.map((f) => [f.name, f]));
  const order: string[] = [];
  const visit = (n: string) => {
    if (order.includes(n)) return;
    order.push(n);
    for (const d of byName.get(n)?.dependency ?? []) visit(d);
  };
  visit(name);
  return order.map((n) => p.encoded.get(n)!);
}

type Json = Record<string, unknown>;

const INVALID: number = grpc.status.INVALID_ARGUMENT;

/**
 * Answer one ServerReflectionRequest (as a plain object in the bufbuild shape).
 * `served` (default: every service in the pool) is what listServices names:
 * the services this server serves. Files and symbols are answered from the
 * whole pool, as grpc-go does: messages of one file are used by another.
 * Names a caller sends are bounded (LIMITS.reflectionName) and echoed clipped.
 */
export function answerReflection(
  p: DescriptorPool,
  req: { host: string; messageRequest: { case?: string; value?: unknown } },
  served: readonly string[] = p.services,
): Json {
  const err = (code: grpc.status, message: string) => ({
    case: 'errorResponse',
    value: { errorCode: code, errorMessage: message },
  });
  const r = req.messageRequest;
  const name = (v: unknown): string => String(v);
  if (req.host.length > LIMITS.reflectionName) {
    return { validHost: '', messageResponse: err(INVALID, overLimit('host', req.host, LIMITS.reflectionName)) };
  }
  const tooLong = (field: string, v: string): Json | undefined =>
    v.length > LIMITS.reflectionName ? err(INVALID, overLimit(field, v, LIMITS.reflectionName)) : undefined;
  let messageResponse: Json;
  switch (r.case) {
    case 'listServices': {
      const names = p.services.filter((s) => served.includes(s));
      messageResponse = { case: 'listServicesResponse', value: { service: names.map((n) => ({ name: n })) } };
      break;
    }
    case 'fileByFilename': {
      const file = name(r.value);
      messageResponse =
        tooLong('file_by_filename', file) ??
        (p.encoded.has(file)
          ? { case: 'fileDescriptorResponse', value: { fileDescriptorProto: withDeps(p, file) } }
          : err(grpc.status.NOT_FOUND, `file not found: ${clip(file)}`));
      break;
    }
    case 'fileContainingSymbol': {
      const sym = name(r.value).replace(/^\./, '');
      const file = p.symbols.get(sym);
      messageResponse =
        tooLong('file_containing_symbol', sym) ??
        (file
          ? { case: 'fileDescriptorResponse', value: { fileDescriptorProto: withDeps(p, file) } }
          : err(grpc.status.NOT_FOUND, `symbol not found: ${clip(sym)}`));
      break;
    }
    case 'fileContainingExtension': {
      const v = r.value as { containingType: string; extensionNumber: number };
      messageResponse = err(grpc.status.NOT_FOUND, `no extension ${v.extensionNumber} of ${clip(v.containingType)}`);
      break;
    }
    case 'allExtensionNumbersOfType': {
      const t = name(r.value).replace(/^\./, '');
      messageResponse =
        tooLong('all_extension_numbers_of_type', t) ??
        (p.symbols.has(t)
          ? { case: 'allExtensionNumbersResponse', value: { baseTypeName: t, extensionNumber: [] } }
          : err(grpc.status.NOT_FOUND, `type not found: ${clip(t)}`));
      break;
    }
    default:
      messageResponse = err(grpc.status.UNIMPLEMENTED, `unsupported reflection request ${String(r.case)}`);
  }
  // An oversize request is not echoed back: the answer would be as large as the request.
  const bounded = messageResponse.case !== 'errorResponse' || (messageResponse.value as Json).errorCode !== INVALID;
  return bounded ? { validHost: req.host, originalRequest: req, messageResponse } : { validHost: '', messageResponse };
}

/**
 * grpc.reflection.v1 and v1alpha ServerReflection services, ready for
 * Server.addService. `served` names the services the server serves, read at
 * each listServices (default: every service in the pool).
 */
export function reflectionServices(
  p: DescriptorPool = descriptorPool(),
  served: () => readonly string[] = () => p.services,
): Array<{
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}> {
  return ['grpc.reflection.v1', 'grpc.reflection.v1alpha'].map((pkg) => {
    const input = p.registry.getMessage(`${pkg}.ServerReflectionRequest`)!;
    const output = p.registry.getMessage(`${pkg}.ServerReflectionResponse`)!;
    const definition = {
      ServerReflectionInfo: bidi(`/${pkg}.ServerReflection/ServerReflectionInfo`, input, output),
    } as grpc.ServiceDefinition;
    const implementation: grpc.UntypedServiceImplementation = {
      ServerReflectionInfo: (
        call: grpc.ServerDuplexStream<MessageShape<typeof input>, MessageShape<typeof output>>,
      ) => {
        call.on('data', (req) => {
          const answer = answerReflection(p, req as never, served());
          call.write(create(output, answer as never));
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined); // a client going away is not our error
      },
    };
    return { definition, implementation };
  });
}

/** The proto names reflection serves, e.g. for docs and tests. */
export function servedFiles(p: DescriptorPool = descriptorPool()): string[] {
  return p.files.map((f) => f.name);
}
