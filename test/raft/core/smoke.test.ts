import { describe, expect, it } from 'vitest';
import { Cluster, text } from './cluster.js';

describe('smoke', () => {
  it('elects, replicates, commits', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    expect(c.node('1').status().role).toBe('leader');
    c.propose('1', 'x');
    c.stabilize();
    for (const id of ['1', '2', '3']) expect(c.get(id).applied.map(text)).toEqual(['x']);
  });
});
