// deploy/docker-compose.yml and deploy/k8s/ are generated from
// deploy/topologies/example.yaml; this proves the committed files are exactly
// what the generator makes now (so nobody hand-edits them) and checks their
// structure (no docker or kubectl here, so structurally).
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

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const deployDir = join(repo, 'deploy');
const exampleFile = join(deployDir, 'topologies', 'example.yaml');
const example = loadTopology(exampleFile);
const files = generateDeploy(example, { sourceName: sourceNameFor(exampleFile, deployDir) });

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

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
    const docs = [...files]
      .filter(([n]) => n.startsWith('k8s/') && n !== 'k8s/kustomization.yaml')
      .flatMap(([n, text]) => parseAllDocuments(text).map((d) => ({ file: n, doc: d.toJS() as Any })));
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
    const ha = loadTopology(join(deployDir, 'topologies', 'ha.yaml'));
    const out = generateDeploy(ha);
    const pdbs = [...out]
      .filter(([n]) => n.startsWith('k8s/cell-'))
      .flatMap(([, t]) => parseAllDocuments(t).map((d) => d.toJS() as Any))
      .filter((d) => d.kind === 'PodDisruptionBudget');
    expect(pdbs).toHaveLength(7);
    for (const p of pdbs) expect(p.spec.maxUnavailable).toBe(1);
    const compose = parse(out.get('docker-compose.yml')!) as Any;
    expect(Object.keys(compose.services).filter((s) => /^root-\d$/.test(s))).toEqual(['root-1', 'root-2', 'root-3']);
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
