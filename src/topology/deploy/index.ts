// Deployment files generated from a topology, so the topology is written once:
// docker-compose (compose.ts) and Kubernetes manifests (k8s.ts). Generation is
// pure: file name → text; `meshlb deploy` (src/cli/deploy.ts) writes them.
import type { Topology } from '../types.js';
import { deploySettings, type DeployOptions } from './common.js';
import { composeFiles } from './compose.js';
import { k8sFiles } from './k8s.js';

export { CONTAINER_PORT, type DeployOptions } from './common.js';

/** All generated files, relative to the output directory. */
export function generateDeploy(t: Topology, opts: DeployOptions = {}): Map<string, string> {
  const s = deploySettings(t, opts);
  return new Map([...composeFiles(t, s), ...k8sFiles(t, s)]);
}
