// deploy/docker-compose.yml and deploy/k8s/ are generated from
// deploy/topologies/example.yaml; this proves the committed files are exactly
// what the generator makes now (so nobody hand-edits them) and checks their
// structure (no docker or kubectl here, so structurally): per replica a data
// volume at its --data-dir, health probes, a PDB per replicated cell, and a
// Dockerfile that runs the replica as a non-root user with a HEALTHCHECK.
// test/cli/deploy-image.test.ts runs the image's commands as real processes.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse } from 'yaml';
import { runDeploy, sourceNameFor } from '../../src/cli/deploy.js';
import { CONTAINER_PORT, generateDeploy } from '../../src/topology/deploy/index.js';
import { loadTopology, parseTopology } from '../../src/topology/parse.js';
import { cellSlug } from '../../src/topology/paths.js';
import type { Topology } from '../../src/topology/types.js';
import { readDockerfile } from './dockerfile.js';

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const deployDir = join(repo, 'deploy');
const exampleFile = join(deployDir, 'topologies', 'example.yaml');
const example = loadTopology(exampleFile);
const files = generateDeploy(example, { sourceName: sourceNameFor(exampleFile, deployDir) });

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ha = loadTopology(join(deployDir, 'topologies', 'ha.yaml'));
// a 5-replica group too, for the PDB numbers
const five = parseTopology(
  'name: five\naddressing: { host: 127.0.0.1, basePort: 7300 }\ncells:\n  name: /\n  replicas: 5\n  children: [{ name: a, replicas: 3 }]\n',
  'five.yaml',
);
const dockerfile = readDockerfile(join(deployDir, 'Dockerfile'));
const imageUid = Number(dockerfile.last('USER')?.args.split(':')[0]);

const valueOf = (args: string[], flag: string) => {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
};

function k8sDocs(out: Map<string, string>): { file: string; doc: Any }[] {
  return [...out]
    .filter(([n]) => n.startsWith('k8s/') && n !== 'k8s/kustomization.yaml')
    .flatMap(([n, text]) => parseAllDocuments(text).map((d) => ({ file: n, doc: d.toJS() as Any })));
}

/** Per replica: its own named volume at its --data-dir, a grpc health check, parents first. */
function checkComposeReplicas(t: Topology, out: Map<string, string>): void {
  const compose = parse(out.get('docker-compose.yml')!) as Any;
  const services = compose.services as Record<string, Any>;
  const volumesSeen = new Set<string>();
  for (const cell of t.cells) {
    for (const r of cell.replicas) {
      const name = `${cellSlug(cell.path)}-${r.replica}`;
      const s = services[name]!;
      const dataDir = valueOf(s.command, '--data-dir');
      expect(dataDir, `${name} --data-dir`).toBeTruthy();
      const data = (s.volumes as string[]).filter((v) => v.split(':')[1] === dataDir);
      expect(data, `${name}: one volume at ${dataDir}`).toHaveLength(1);
      const volume = data[0]!.split(':')[0]!;
      expect(volume, 'a named volume, not a host path').toMatch(/^[a-z0-9][a-z0-9_.-]*$/);
      expect(compose.volumes, `volume ${volume} declared`).toHaveProperty([volume]);
      expect(volumesSeen.has(volume), `${volume} shared by two replicas`).toBe(false);
      volumesSeen.add(volume);
      expect(s.healthcheck.test).toEqual([
        'CMD',
        'node',
        'bin/meshlb.js',
        'health',
        '--address',
        `${name}:${CONTAINER_PORT}`,
      ]);
      for (const k of ['interval', 'timeout', 'start_period', 'retries']) expect(s.healthcheck, k).toHaveProperty(k);
      const parent = t.byPath.get(cell.parent);
      if (!parent) expect(s.depends_on).toBeUndefined();
      else
        expect(s.depends_on).toEqual(
          Object.fromEntries(
            parent.replicas.map((p) => [`${cellSlug(parent.path)}-${p.replica}`, { condition: 'service_healthy' }]),
          ),
        );
    }
  }
  expect(Object.keys(compose.volumes)).toHaveLength(volumesSeen.size);
  // roles that serve no port do not inherit the image's HEALTHCHECK
  for (const [name, s] of Object.entries(services))
    if (name.startsWith('agents-') || name === 'submit') expect(s.healthcheck, name).toEqual({ disable: true });
}

/** Per cell: a StatefulSet of its replica count, a claim per replica at --data-dir, grpc probes, a PDB if replicated. */
function checkK8sCells(t: Topology, out: Map<string, string>): void {
  const docs = k8sDocs(out);
  for (const cell of t.cells) {
    const slug = cellSlug(cell.path);
    const file = `k8s/cell-${slug}.yaml`;
    const mine = docs.filter((d) => d.file === file).map((d) => d.doc);
    const sts = mine.find((d) => d.kind === 'StatefulSet')!;
    expect(sts.spec.replicas, slug).toBe(cell.replicas.length);
    const pod = sts.spec.template.spec;
    const c = pod.containers[0];
    const dataDir = valueOf((c.args[0] as string).split(' '), '--data-dir');
    expect(dataDir, `${slug} --data-dir`).toBeTruthy();
    const mount = (c.volumeMounts as Any[]).find((m) => m.mountPath === dataDir)!;
    expect(mount, `${slug}: a volume at ${dataDir}`).toBeDefined();
    // from a claim template (one PVC per pod), not a pod volume every replica would share
    expect((sts.spec.volumeClaimTemplates as Any[]).map((v) => v.metadata.name)).toContain(mount.name);
    expect((pod.volumes as Any[]).map((v) => v.name)).not.toContain(mount.name);
    const port = c.ports.find((p: Any) => p.name === 'grpc').containerPort;
    expect(port).toBe(CONTAINER_PORT);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
      expect(c[probe].grpc, probe).toEqual({ port });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: imageUid, fsGroup: imageUid });
    const svc = mine.find((d) => d.kind === 'Service')!;
    expect(svc.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(sts.spec.serviceName).toBe(svc.metadata.name);
    const pdbs = mine.filter((d) => d.kind === 'PodDisruptionBudget');
    if (cell.replicas.length === 1) {
      expect(pdbs, slug).toHaveLength(0);
      expect(out.get(file), 'the file says why there is no PDB').toContain('# No PodDisruptionBudget');
    } else {
      // one voluntary disruption at a time: a majority of 3 or 5 always stays
      expect(pdbs, slug).toHaveLength(1);
      expect(pdbs[0]!.spec).toEqual({ maxUnavailable: 1, selector: sts.spec.selector });
      expect(cell.replicas.length - pdbs[0]!.spec.maxUnavailable).toBeGreaterThan(cell.replicas.length / 2);
    }
  }
}

describe('generated deploy files', () => {
  it('match the committed files exactly (regenerate with: npx meshlb deploy --topology deploy/topologies/example.yaml --out deploy)', () => {
    for (const [name, text] of files) {
      const p = join(deployDir, name);
      expect(existsSync(p), `${p} missing`).toBe(true);
      expect(readFileSync(p, 'utf8'), `${name} differs from the generator's output`).toBe(text);
    }
    // and nothing stale is left in k8s/
    const k8s = readdirSync(join(deployDir, 'k8s')).map((f) => `k8s/${f}`);
    expect(k8s.sort()).toEqual([...files.keys()].filter((f) => f.startsWith('k8s/')).sort());
  });

  it('compose: one service per replica running serve, agent-sim per node, a submit job', () => {
    const compose = parse(files.get('docker-compose.yml')!) as Any;
    const services = compose.services as Record<string, Any>;
    const topo = parseTopology(files.get('compose/topology.yaml')!, 'compose/topology.yaml');
    for (const cell of example.cells) {
      for (const r of cell.replicas) {
        const name = `${cellSlug(cell.path)}-${r.replica}`;
        const s = services[name]!;
        expect(s, name).toBeDefined();
        expect(s.command.slice(0, 7)).toEqual([
          'serve',
          '--topology',
          '/etc/meshlb/topology.yaml',
          '--cell',
          cell.path,
          '--replica',
          String(r.replica),
        ]);
        expect(s.volumes[0]).toBe('./compose/topology.yaml:/etc/meshlb/topology.yaml:ro');
        expect(s.healthcheck.test).toContain('health');
        // the address the other replicas dial is this service's DNS name
        expect(topo.byPath.get(cell.path)!.replicas[r.replica - 1]!.address).toBe(`${name}:${CONTAINER_PORT}`);
      }
    }
    const agents = Object.keys(services).filter((s) => s.startsWith('agents-'));
    expect(agents).toHaveLength(8);
    for (const a of agents) {
      const s = services[a]!;
      expect(s.command[0]).toBe('agent-sim');
      const target = (s.command[2] as string).split(':')[0]!;
      expect(services[target], `agent-sim ${a} dials ${target}`).toBeDefined();
      expect(Object.keys(s.depends_on)).toEqual([target]);
    }
    expect(services.submit!.command.slice(0, 3)).toEqual(['submit', '--address', `root-1:${CONTAINER_PORT}`]);
    expect(services.submit!.profiles).toEqual(['workload']);
    expect(Object.keys(services)).toHaveLength(15 + 8 + 1);
    // every service name is a valid compose/DNS name
    for (const s of Object.keys(services)) expect(s).toMatch(/^[a-z0-9][a-z0-9-]*$/);
  });

  it('k8s: a StatefulSet + headless Service per cell with grpc probes, a ConfigMap with the topology, PDBs for replicated cells', () => {
    const docs = k8sDocs(files);
    for (const { file, doc } of docs) {
      expect(doc.apiVersion, file).toBeTruthy();
      expect(doc.kind, file).toBeTruthy();
      expect(doc.metadata.name, file).toMatch(/^[a-z0-9][a-z0-9-]*$/);
    }
    const of = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
    expect(of('StatefulSet')).toHaveLength(15);
    expect(of('Service')).toHaveLength(15);
    expect(of('PodDisruptionBudget')).toHaveLength(0); // example.yaml has 1 replica per cell
    for (const sts of of('StatefulSet')) {
      const c = sts.spec.template.spec.containers[0];
      expect(c.readinessProbe.grpc.port).toBe(CONTAINER_PORT);
      expect(c.livenessProbe.grpc.port).toBe(CONTAINER_PORT);
      expect(c.args[0]).toMatch(
        /serve --topology \/etc\/meshlb\/topology.yaml --cell \S+ --replica \$\(\( \$\{HOSTNAME##\*-\} \+ 1 \)\)/,
      );
      // selector matches the template, and no agent-sim pod
      expect(sts.spec.template.metadata.labels).toMatchObject(sts.spec.selector.matchLabels);
      expect(sts.spec.selector.matchLabels['meshlb.io/role']).toBe('replica');
      const svc = of('Service').find((s) => s.metadata.name === sts.spec.serviceName)!;
      expect(svc.spec.clusterIP).toBe('None');
      expect(svc.spec.selector).toEqual(sts.spec.selector.matchLabels);
    }
    for (const d of of('Deployment')) expect(d.spec.selector.matchLabels['meshlb.io/role']).toBe('agent-sim');
    const cm = of('ConfigMap')[0]!;
    const topo = parseTopology(cm.data['topology.yaml'], 'configmap');
    expect(topo.byPath.get('/eu/west-1a/n1')!.replicas[0]!.address).toBe(
      `eu-west-1a-n1-0.eu-west-1a-n1.meshlb.svc.cluster.local:${CONTAINER_PORT}`,
    );
    const kustomization = parse(files.get('k8s/kustomization.yaml')!) as Any;
    for (const r of kustomization.resources as string[]) expect(files.has(`k8s/${r}`), r).toBe(true);
  });

  it('makes a PodDisruptionBudget for each replicated cell (ha.yaml)', () => {
    const out = generateDeploy(ha);
    const pdbs = k8sDocs(out)
      .map((d) => d.doc)
      .filter((d) => d.kind === 'PodDisruptionBudget');
    expect(pdbs).toHaveLength(7);
    for (const p of pdbs) expect(p.spec.maxUnavailable).toBe(1);
    const compose = parse(out.get('docker-compose.yml')!) as Any;
    expect(Object.keys(compose.services).filter((s) => /^root-\d$/.test(s))).toEqual(['root-1', 'root-2', 'root-3']);
  });

  it('compose: every replica has its own named volume at its --data-dir, a grpc healthcheck, and waits for its parent (example, ha, 5 replicas)', () => {
    checkComposeReplicas(example, files);
    checkComposeReplicas(ha, generateDeploy(ha));
    checkComposeReplicas(five, generateDeploy(five));
  });

  it('k8s: per cell a StatefulSet of its replica count, a volume claim at --data-dir, grpc startup/readiness/liveness probes, a PDB only when replicated (example, ha, 5 replicas)', () => {
    checkK8sCells(example, files);
    checkK8sCells(ha, generateDeploy(ha));
    checkK8sCells(five, generateDeploy(five));
  });

  it('Dockerfile: non-root fixed uid owning the data dir, HEALTHCHECK by the health command, an entrypoint the generated commands fit', () => {
    expect(imageUid, 'USER is a numeric uid').toBeGreaterThan(0);
    expect(dockerfile.last('USER')!.args).toBe(`${imageUid}:${imageUid}`);
    expect(dockerfile.all('RUN').some((r) => r.args.includes(`chown ${imageUid}:${imageUid} /data`))).toBe(true);
    expect(dockerfile.last('VOLUME')!.args).toBe('/data');
    expect(dockerfile.last('EXPOSE')!.args).toBe(String(CONTAINER_PORT));
    // The image runs the compiled CLI (packaged.test.ts runs it from this layout): a build stage compiles,
    // the image takes its dist/src, production dependencies only, no sources, no tsx (a dev dependency).
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', undefined]);
    expect(dockerfile.stage('build').all('RUN').at(-1)!.args).toBe('npm run build');
    expect(dockerfile.all('RUN').some((r) => r.args.includes('npm ci --omit=dev'))).toBe(true);
    expect(dockerfile.copies.filter((c) => c.from === 'build')).toEqual([
      { from: 'build', sources: ['/app/dist/src'], dest: './dist/src' },
    ]);
    expect(dockerfile.copies.flatMap((c) => c.sources)).not.toContain('src');
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as Any;
    expect(pkg.dependencies).not.toHaveProperty('tsx');
    expect(pkg.devDependencies).toHaveProperty('tsx');
    // No source the stages copy from the build context is left out of it by .dockerignore.
    const ignored = readFileSync(join(repo, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const glob = (p: string) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`);
    for (const src of dockerfile.stages
      .flatMap((st) => st.copies.filter((c) => c.from === undefined))
      .flatMap((c) => c.sources))
      for (const p of ignored) expect(glob(p).test(src), `COPY ${src} is in .dockerignore (${p})`).toBe(false);
    expect(ignored).toContain('node_modules');
    // npm ci runs the package's prepare script: in each stage its file is copied before, or scripts are off
    // (the image before session 15 failed here: `node scripts/prepare.mjs`, a file it had not copied).
    const prepareFile = /^node (\S+)$/.exec(pkg.scripts.prepare as string)![1]!;
    for (const stage of dockerfile.stages) {
      const ci = stage.instructions.findIndex((i) => i.keyword === 'RUN' && i.args.includes('npm ci'));
      const args = stage.instructions[ci]!.args;
      const copiedBefore = stage.instructions
        .slice(0, ci)
        .filter((i) => i.keyword === 'COPY')
        .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
      const has = copiedBefore.some((src) => prepareFile === src || prepareFile.startsWith(`${src}/`));
      expect(has || args.includes('--ignore-scripts'), `stage ${stage.name ?? 'image'}: ${args}`).toBe(true);
    }
    const hc = dockerfile.healthcheck!;
    expect(hc.command).toBe('node bin/meshlb.js health --address "$MESHLB_HEALTH_ADDRESS"');
    expect(dockerfile.env.MESHLB_HEALTH_ADDRESS).toBe(`127.0.0.1:${CONTAINER_PORT}`);
    for (const k of ['interval', 'timeout', 'start-period', 'retries']) expect(hc.options, k).toHaveProperty(k);
    // compose passes a subcommand to the ENTRYPOINT; k8s runs the same program through sh -c
    expect(dockerfile.entrypoint).toEqual(['node', 'bin/meshlb.js']);
    const compose = parse(files.get('docker-compose.yml')!) as Any;
    expect(compose.services['root-1'].command[0]).toBe('serve');
    const sts = k8sDocs(files).find((d) => d.doc.kind === 'StatefulSet')!.doc;
    expect(sts.spec.template.spec.containers[0].args[0]).toMatch(
      new RegExp(`^exec ${dockerfile.entrypoint.join(' ')} serve `),
    );
  });

  it('runDeploy writes the files', async () => {
    const out = mkdtempSync(join(tmpdir(), 'meshlb-deploy-'));
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      expect(await runDeploy({ topologyFile: exampleFile, outDir: out })).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(existsSync(join(out, 'docker-compose.yml'))).toBe(true);
    expect(existsSync(join(out, 'k8s', 'cell-root.yaml'))).toBe(true);
  });
});
