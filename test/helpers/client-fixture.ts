// What the client SDK tests share: a fake node and clients that are closed
// after each test, and a helper that expects a call to fail with a
// MeshClientError. Call useClientFixture(seed) at the top of a test file.
import { afterEach, expect } from 'vitest';
import { seededRandom } from '../../src/agent/index.js';
import { MeshClient, MeshClientError } from '../../src/client/index.js';
import { FakeNode } from './fake-node.js';

export interface ClientFixture {
  startNode(): Promise<FakeNode>;
  newClient(opts: ConstructorParameters<typeof MeshClient>[0]): MeshClient;
  /** Run `fn` after the test (last registered, first run). */
  cleanup(fn: () => unknown): void;
}

export function useClientFixture(seed: number): ClientFixture {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    async startNode() {
      const node = await FakeNode.start();
      cleanups.push(() => node.stop());
      return node;
    },
    newClient(opts) {
      const c = new MeshClient({ random: seededRandom(seed), ...opts });
      cleanups.push(() => c.close());
      return c;
    },
    cleanup(fn) {
      cleanups.push(fn);
    },
  };
}

export async function expectMeshError(p: Promise<unknown>): Promise<MeshClientError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MeshClientError);
    return e as MeshClientError;
  }
  throw new Error('expected a MeshClientError');
}
