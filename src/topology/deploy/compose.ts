// docker-compose from a topology: one service per replica, named
// <cell-slug>-<n> and reached at <cell-slug>-<n>:7000; agents-<slug> services
// of simulated agents per node cell; a `submit` service under the "workload"
// profile.
import { cellSlug } from '../paths.js';
import { topologyToDocument } from '../parse.js';
import type { CellSpec, ReplicaSpec, Topology } from '../types.js';
import {
  CONTAINER_PORT,
  TOPOLOGY_MOUNT,
  agentSimArgs,
  header,
  submitArgs,
  yamlDoc,
  type DeploySettings,
} from './common.js';

const composeName = (cell: CellSpec, r: ReplicaSpec) => `${cellSlug(cell.path)}-${r.replica}`;

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
  for (const cell of t.cells) {
    for (const r of cell.replicas) {
      services[composeName(cell, r)] = {
        image,
        command: [
          'serve',
          '--topology',
          TOPOLOGY_MOUNT,
          '--cell',
          cell.path,
          '--replica',
          String(r.replica),
          '--listen',
          '0.0.0.0',
          '--data-dir',
          '/data',
        ],
        volumes: [`./compose/topology.yaml:${TOPOLOGY_MOUNT}:ro`],
        healthcheck: {
          // its own service name: right whether serve binds 0.0.0.0 or the name's address
          test: ['CMD', 'node', 'bin/meshlb.js', 'health', '--address', `${composeName(cell, r)}:${CONTAINER_PORT}`],
          interval: '5s',
          timeout: '3s',
          retries: 5,
        },
        restart: 'unless-stopped',
      };
    }
  }
  if (s.agentsPerNode > 0) {
    for (const cell of t.cells.filter((c) => c.tier === 'node')) {
      const slug = cellSlug(cell.path);
      services[`agents-${slug}`] = {
        image,
        command: agentSimArgs(`${composeName(cell, cell.replicas[0]!)}:${CONTAINER_PORT}`, s, slug),
        depends_on: { [composeName(cell, cell.replicas[0]!)]: { condition: 'service_healthy' } },
        restart: 'unless-stopped',
      };
    }
  }
  if (root) {
    services.submit = {
      image,
      profiles: ['workload'],
      command: ['submit', '--address', `${composeName(root, root.replicas[0]!)}:${CONTAINER_PORT}`, ...submitArgs(s)],
      depends_on: { [composeName(root, root.replicas[0]!)]: { condition: 'service_healthy' } },
      restart: 'no',
    };
  }
  const compose = {
    name: `meshlb-${t.name}`,
    services,
  };
  files.set(
    'docker-compose.yml',
    header(
      `One service per replica; agents-* run simulated agents; \`docker compose --profile workload run --rm submit\` sends a workload.\n# Build the image first: docker build -f deploy/Dockerfile -t ${image} .`,
      source,
    ) + yamlDoc(compose),
  );
  return files;
}
