// Where the protos a replica serves come from: the package's proto/ (found from
// the package root, util/package-root.ts: a checkout, dist/ or an installed
// package), and the health and
// reflection protos inside their npm packages. Apart from descriptors.ts (how
// descriptors are built from them) because finding files on disk is the only
// part that depends on how meshlb was installed.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packagePath } from '../util/package-root.js';

const require = createRequire(import.meta.url);

/** The package's proto/ directory (the package root's; the image and the npm package ship it). */
export function repoProtoDir(): string {
  const p = packagePath('proto');
  if (!existsSync(join(p, 'meshlb', 'v1'))) throw new Error(`cannot find proto/meshlb/v1 in the package: ${p}`);
  return p;
}

/** One source tree: an include directory and the import paths to load from it. */
export interface ProtoSource {
  includeDir: string;
  files: string[];
  /** Rename import paths for the descriptors (e.g. health/v1/health.proto → grpc/health/v1/health.proto). */
  rename?: Record<string, string>;
}

/** meshlb.v1 protos, grpc.health.v1 (from grpc-health-check) and grpc.reflection v1/v1alpha. */
export function defaultProtoSources(): ProtoSource[] {
  const protoDir = repoProtoDir();
  const meshFiles = readdirSync(join(protoDir, 'meshlb', 'v1'))
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => `meshlb/v1/${f}`);
  const healthPath = (require('grpc-health-check') as { protoPath: string }).protoPath;
  const healthDir = join(dirname(healthPath), '..', '..');
  const reflectionDir = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  return [
    { includeDir: protoDir, files: meshFiles },
    {
      includeDir: healthDir,
      files: ['health/v1/health.proto'],
      rename: { 'health/v1/health.proto': 'grpc/health/v1/health.proto' },
    },
    {
      includeDir: reflectionDir,
      files: ['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'],
    },
  ];
}
