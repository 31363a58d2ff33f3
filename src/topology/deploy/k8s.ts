// Kubernetes manifests from a topology: per cell a StatefulSet (pod ordinal =
// replica - 1) and a headless Service, so a replica is reached at
// <slug>-<n-1>.<slug>.<ns>.svc.cluster.local:7000; a PodDisruptionBudget for a
// replicated cell; the topology in a ConfigMap; a Deployment of simulated
// agents per node cell; a submit Job; and a kustomization of them all but the Job.
import { dirname } from 'node:path';
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

const k8sHost = (cell: CellSpec, r: ReplicaSpec, ns: string) =>
  `${cellSlug(cell.path)}-${r.replica - 1}.${cellSlug(cell.path)}.${ns}.svc.cluster.local`;

/** The k8s/ files, relative to the output directory. */
export function k8sFiles(t: Topology, s: DeploySettings): Map<string, string> {
  const { image, namespace: ns, sourceName: source } = s;
  const files = new Map<string, string>();
  const root = t.byPath.get('/');
  const nodes = t.cells.filter((c) => c.tier === 'node');
  // Replica pods and agent-sim pods of one cell differ by role, so a cell's
  // StatefulSet and Service select only its replicas.
  const labels = (cell?: CellSpec, role = 'replica') => ({
    'app.kubernetes.io/name': 'meshlb',
    'app.kubernetes.io/instance': t.name,
    ...(cell ? { 'meshlb.io/cell': cellSlug(cell.path), 'meshlb.io/tier': cell.tier, 'meshlb.io/role': role } : {}),
  });
  const k8sTopology = topologyToDocument(t, (c, r) => `${k8sHost(c, r, ns)}:${CONTAINER_PORT}`);
  const resources: string[] = [];
  const add = (name: string, docs: unknown[], what: string) => {
    files.set(`k8s/${name}`, header(what, source) + docs.map((d) => yamlDoc(d)).join('---\n'));
    resources.push(name);
  };
  add(
    'namespace.yaml',
    [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: labels() } }],
    'The namespace.',
  );
  add(
    'configmap.yaml',
    [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'meshlb-topology', namespace: ns, labels: labels() },
        data: { 'topology.yaml': yamlDoc(k8sTopology) },
      },
    ],
    'The topology, with addresses as the pods see them.',
  );
  for (const cell of t.cells) {
    const slug = cellSlug(cell.path);
    const docs: unknown[] = [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: slug, namespace: ns, labels: labels(cell) },
        spec: {
          clusterIP: 'None',
          // Replicas must find each other (Raft) and bind their names before they are ready.
          publishNotReadyAddresses: true,
          selector: labels(cell),
          ports: [{ name: 'grpc', port: CONTAINER_PORT, targetPort: 'grpc', appProtocol: 'grpc' }],
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: slug, namespace: ns, labels: labels(cell) },
        spec: {
          serviceName: slug,
          replicas: cell.replicas.length,
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: labels(cell) },
          template: {
            metadata: { labels: labels(cell) },
            spec: {
              terminationGracePeriodSeconds: 20,
              // the image runs as user node (1000); the data volume must be writable by it
              securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
              containers: [
                {
                  name: 'meshlb',
                  image,
                  // Replica number = pod ordinal + 1 (the hostname ends in -<ordinal>).
                  command: ['sh', '-c'],
                  args: [
                    `exec node bin/meshlb.js serve --topology ${TOPOLOGY_MOUNT} --cell ${cell.path} --replica $(( \${HOSTNAME##*-} + 1 )) --listen 0.0.0.0 --data-dir /data`,
                  ],
                  ports: [{ name: 'grpc', containerPort: CONTAINER_PORT }],
                  readinessProbe: { grpc: { port: CONTAINER_PORT }, periodSeconds: 5, failureThreshold: 2 },
                  livenessProbe: {
                    grpc: { port: CONTAINER_PORT },
                    initialDelaySeconds: 10,
                    periodSeconds: 10,
                    failureThreshold: 3,
                  },
                  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
                  volumeMounts: [
                    { name: 'topology', mountPath: dirname(TOPOLOGY_MOUNT), readOnly: true },
                    { name: 'data', mountPath: '/data' },
                  ],
                },
              ],
              volumes: [{ name: 'topology', configMap: { name: 'meshlb-topology' } }],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: 'data' },
              spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
            },
          ],
        },
      },
    ];
    if (cell.replicas.length > 1) {
      docs.push({
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: { name: slug, namespace: ns, labels: labels(cell) },
        // A Raft group keeps a majority: at most one voluntary disruption at a time.
        spec: { maxUnavailable: 1, selector: { matchLabels: labels(cell) } },
      });
    }
    add(
      `cell-${slug}.yaml`,
      docs,
      `Cell ${cell.path} (${cell.tier}, ${cell.replicas.length} replica${cell.replicas.length > 1 ? 's' : ''}).`,
    );
  }
  if (s.agentsPerNode > 0 && nodes.length) {
    add(
      'agent-sim.yaml',
      nodes.map((cell) => ({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: `agents-${cellSlug(cell.path)}`, namespace: ns, labels: labels(cell, 'agent-sim') },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels(cell, 'agent-sim') },
          template: {
            metadata: { labels: labels(cell, 'agent-sim') },
            spec: {
              containers: [
                {
                  name: 'agent-sim',
                  image,
                  args: agentSimArgs(
                    `${k8sHost(cell, cell.replicas[0]!, ns)}:${CONTAINER_PORT}`,
                    s,
                    cellSlug(cell.path),
                  ),
                  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                },
              ],
            },
          },
        },
      })),
      'Simulated agents, one Deployment per node cell.',
    );
  }
  if (root) {
    add(
      'submit-job.yaml',
      [
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'submit', namespace: ns, labels: labels() },
          spec: {
            backoffLimit: 0,
            template: {
              metadata: { labels: labels() },
              spec: {
                restartPolicy: 'Never',
                containers: [
                  {
                    name: 'submit',
                    image,
                    args: [
                      'submit',
                      '--address',
                      `${root.path === '/' ? 'root' : cellSlug(root.path)}.${ns}.svc.cluster.local:${CONTAINER_PORT}`,
                      ...submitArgs(s),
                    ],
                  },
                ],
              },
            },
          },
        },
      ],
      'A bounded workload against the root cell: kubectl apply -f submit-job.yaml; kubectl logs job/submit.',
    );
  }
  files.set(
    'k8s/kustomization.yaml',
    header('kubectl apply -k deploy/k8s', source) +
      yamlDoc({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: resources.filter((r) => r !== 'submit-job.yaml'),
      }),
  );
  return files;
}
