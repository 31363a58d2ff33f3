import { describe, expect, it } from 'vitest';
import { createMetrics, metrics, startMetricsServer } from '../../src/admin/metrics.js';

describe('metrics', () => {
  it('counts with cell labels and renders Prometheus text', async () => {
    const m = createMetrics();
    m.tasksSubmitted.labels('/').inc(3);
    m.tasksCompleted.labels({ cell: '/', status: 'completed' }).inc(2);
    m.queueDepth.labels('/eu').set(7);
    m.dispatchLatency.labels('/').observe(0.002);
    m.linkMessages.labels({ cell: '/eu', direction: 'up', link: 'parent' }).inc();
    const text = await m.registry.metrics();
    expect(text).toContain('meshlb_tasks_submitted_total{cell="/"} 3');
    expect(text).toContain('meshlb_tasks_completed_total{cell="/",status="completed"} 2');
    expect(text).toContain('meshlb_queue_depth{cell="/eu"} 7');
    expect(text).toContain('meshlb_dispatch_latency_seconds_count{cell="/"} 1');
    expect(text).toContain('meshlb_link_messages_total{cell="/eu",direction="up",link="parent"} 1');
  });

  it('keeps independent registries apart and the process one stable', () => {
    const a = createMetrics();
    const b = createMetrics();
    a.tasksSubmitted.labels('/').inc();
    expect(b.registry).not.toBe(a.registry);
    expect(metrics()).toBe(metrics());
  });

  it('serves GET /metrics on loopback and 404 elsewhere', async () => {
    const m = createMetrics();
    m.agentsConnected.labels('/eu/a/n1').set(5);
    const srv = await startMetricsServer(0, { registry: m.registry });
    try {
      expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(srv.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('meshlb_agents_connected{cell="/eu/a/n1"} 5');
      const other = await fetch(srv.url.replace('/metrics', '/admin'));
      expect(other.status).toBe(404);
    } finally {
      await srv.close();
    }
  });
});
