// Kubernetes manifests from a topology: per cell a StatefulSet (pod ordinal =
// replica - 1) with a volume claim per replica at the data dir and grpc
// probes, and a headless Service, so a replica is reached at
// <slug>-<n-1>.<slug>.<ns>.svc.cluster.local:7000; a PodDisruptionBudget for a
// replicated cell; the topology in a ConfigMap; a Deployment of simulated
// agents per node cell; a submit Job; and a kustomization of them all but the Job.
import { dirname } from 'node:path';
import { cellSlug } from '../paths.js';
import { topologyToDocument } from '../parse.js';
import type { CellSpec, ReplicaSpec, Topology } from '../types.js';
import {
  CONTAINER_PORT,
  DATA_DIR,
  IMAGE_UID,
  TOPOLOGY_MOUNT,
  agentSimArgs,
  header,
  serveArgs,
  submitArgs,
  yamlDoc,
  type DeploySettings,
} from './common.js';

const k8sHost = (cell: CellSpec, r: ReplicaSpec, ns: string) =>
  `${cellSlug(cell.path)}-${r.replica - 1}.${cellSlug(cell.path)}.${ns}.svc.cluster.local`;

const isCommented = (d: unknown): d is [unknown, string] => Array.isArray(d);

/** Said above each StatefulSet: the probe choice, the data volume, and (one replica) why no PDB. */
function statefulSetComment(replicas: number): string {
  const lines = [
    "Probes: the kubelet's own gRPC probe (grpc.health.v1 Check of \"\"; Kubernetes >= 1.24), so the",
    'image needs no probe binary and no node process is started per probe.',
    `The Raft log and snapshots live under ${DATA_DIR}: one PersistentVolumeClaim per replica (data-<pod>),`,
    'kept when the pod is deleted or rescheduled, so the replica rejoins with its state.',
  ];
  if (replicas === 1)
    lines.push(
      'No PodDisruptionBudget: with one replica any disruption stops the cell, so a budget could only',
      'block every node drain (minAvailable 1) or allow everything (minAvailable 0, the same as none).',
    );
  return lines.join('\n');
}

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
  // A document is an object, or [object, comment] to say why in the file.
  const add = (name: string, docs: unknown[], what: string) => {
    const text = docs.map((d) => (isCommented(d) ? yamlDoc(d[0], d[1]) : yamlDoc(d))).join('---\n');
    files.set(`k8s/${name}`, header(what, source) + text);
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
      [
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
              // serve drains for up to 10 s on SIGTERM, then closes
              terminationGracePeriodSeconds: 20,
              // The image's user; fsGroup makes the data volume writable by it
              // (changed only when the volume's root does not match, not on every mount).
              securityContext: {
                runAsNonRoot: true,
                runAsUser: IMAGE_UID,
                runAsGroup: IMAGE_UID,
                fsGroup: IMAGE_UID,
                fsGroupChangePolicy: 'OnRootMismatch',
              },
              containers: [
                {
                  name: 'meshlb',
                  image,
                  // The image's entrypoint (node bin/meshlb.js) through a shell, only
                  // because the replica number is pod ordinal + 1 (the hostname ends
                  // in -<ordinal>); exec leaves node as PID 1, so SIGTERM reaches it.
                  command: ['sh', '-c'],
                  args: [`exec node bin/meshlb.js ${serveArgs(cell.path, '$(( ${HOSTNAME##*-} + 1 ))').join(' ')}`],
                  ports: [{ name: 'grpc', containerPort: CONTAINER_PORT }],
                  // Startup allows a long Raft log replay (up to 2 min) before liveness counts.
                  startupProbe: { grpc: { port: CONTAINER_PORT }, periodSeconds: 2, failureThreshold: 60 },
                  readinessProbe: { grpc: { port: CONTAINER_PORT }, periodSeconds: 5, failureThreshold: 2 },
                  livenessProbe: { grpc: { port: CONTAINER_PORT }, periodSeconds: 10, failureThreshold: 3 },
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
                  volumeMounts: [
                    { name: 'topology', mountPath: dirname(TOPOLOGY_MOUNT), readOnly: true },
                    { name: 'data', mountPath: DATA_DIR },
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
        statefulSetComment(cell.replicas.length),
      ],
    ];
    const n = cell.replicas.length;
    if (n > 1) {
      docs.push([
        {
          apiVersion: 'policy/v1',
          kind: 'PodDisruptionBudget',
          metadata: { name: slug, namespace: ns, labels: labels(cell) },
          spec: { maxUnavailable: 1, selector: { matchLabels: labels(cell) } },
        },
        `A ${n}-replica Raft group commits with ${Math.floor(n / 2) + 1}: at most one voluntary disruption\n` +
          `(drain, eviction) at a time, so a majority always stays${n > 3 ? ', with room for a crash on top' : ''}.`,
      ]);
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
                    t.name,
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
