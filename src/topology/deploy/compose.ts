// docker-compose from a topology: one service per replica, named
// <cell-slug>-<n> and reached at <cell-slug>-<n>:7000, with a named volume
// data-<cell-slug>-<n> at its data dir and a grpc health check; agents-<slug>
// services of simulated agents per node cell; a `submit` service under the
// "workload" profile.
import { cellSlug } from '../paths.js';
import { topologyToDocument } from '../parse.js';
import type { CellSpec, ReplicaSpec, Topology } from '../types.js';
import {
  CONTAINER_PORT,
  DATA_DIR,
  TOPOLOGY_MOUNT,
  agentSimArgs,
  header,
  serveArgs,
  submitArgs,
  yamlDoc,
  type DeploySettings,
} from './common.js';

const composeName = (cell: CellSpec, r: ReplicaSpec) => `${cellSlug(cell.path)}-${r.replica}`;
/** The named volume holding one replica's data dir. */
const dataVolume = (cell: CellSpec, r: ReplicaSpec) => `data-${composeName(cell, r)}`;
const healthy = (names: string[]) =>
  Object.fromEntries(names.map((n) => [n, { condition: 'service_healthy' }]));

/** compose/topology.yaml and docker-compose.yml, relative to the output directory. */
export function composeFiles(t: Topology, s: DeploySettings): Map<string, string> {
  const { image, sourceName: source } = s;
  const files = new Map<string, string>();
  const root = t.byPath.get('/');
  const composeTopology = topologyToDocument(t, (c, r) => `${composeName(c, r)}:${CONTAINER_PORT}`);
  files.set(
    'compose/topology.yaml',
    header('The topology as the compose services see it.', source) + yamlDoc(composeTopology),
  );
  const services: Record<string, unknown> = {};
  const volumes: Record<string, Record<string, never>> = {};
  for (const cell of t.cells) {
    const parent = t.byPath.get(cell.parent);
    for (const r of cell.replicas) {
      const name = composeName(cell, r);
      volumes[dataVolume(cell, r)] = {};
      services[name] = {
        image,
        command: serveArgs(cell.path, String(r.replica)),
        volumes: [`./compose/topology.yaml:${TOPOLOGY_MOUNT}:ro`, `${dataVolume(cell, r)}:${DATA_DIR}`],
        healthcheck: {
          // its own service name: right whether serve binds 0.0.0.0 or the name's address
          test: ['CMD', 'node', 'bin/meshlb.js', 'health', '--address', `${name}:${CONTAINER_PORT}`],
          interval: '5s',
          timeout: '5s',
          // a replica recovering a long Raft log is not failing yet
          start_period: '30s',
          retries: 5,
        },
        // Parents first, so a child's first link attempt finds its parent up.
        // Only ordering: links reconnect with backoff whatever the order, as
        // in k8s, where pods start in parallel.
        ...(parent ? { depends_on: healthy(parent.replicas.map((p) => composeName(parent, p))) } : {}),
        // serve drains for up to 10 s on SIGTERM, then closes (compose's default is 10 s)
        stop_grace_period: '20s',
        restart: 'unless-stopped',
      };
    }
  }
  if (s.agentsPerNode > 0) {
    for (const cell of t.cells.filter((c) => c.tier === 'node')) {
      const slug = cellSlug(cell.path);
      services[`agents-${slug}`] = {
        image,
        command: agentSimArgs(`${composeName(cell, cell.replicas[0]!)}:${CONTAINER_PORT}`, s, slug, t.name),
        depends_on: healthy([composeName(cell, cell.replicas[0]!)]),
        // the image's HEALTHCHECK probes a replica's port; agent-sim serves none
        healthcheck: { disable: true },
        restart: 'unless-stopped',
      };
    }
  }
  if (root) {
    services.submit = {
      image,
      profiles: ['workload'],
      command: ['submit', '--address', `${composeName(root, root.replicas[0]!)}:${CONTAINER_PORT}`, ...submitArgs(s)],
      depends_on: healthy([composeName(root, root.replicas[0]!)]),
      healthcheck: { disable: true },
      restart: 'no',
    };
  }
  const compose = {
    name: `meshlb-${t.name}`,
    services,
    volumes,
  };
  files.set(
    'docker-compose.yml',
    header(
      `One service per replica; agents-* run simulated agents; \`docker compose --profile workload run --rm submit\` sends a workload.\n` +
        `# Each replica keeps its Raft log and snapshots in a named volume of its own (data-<service>) at ${DATA_DIR},\n` +
        `# so a replica restarted or recreated rejoins with its state; \`docker compose down -v\` deletes them.\n` +
        `# Build the image first: docker build -f deploy/Dockerfile -t ${image} .`,
      source,
    ) + yamlDoc(compose),
  );
  return files;
}
