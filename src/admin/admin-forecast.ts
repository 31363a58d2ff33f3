// AdminService.GetScaleRecommendations: per kind, the agents a cell's subtree
// has and should have for its forecast load (src/mesh/forecasts.ts). Read from
// the forecasts of the cell's leader, where the call is routed (admin-route.ts).
import type { GetScaleRecommendationsResponse } from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';

const u32 = (x: number): number => Math.max(0, Math.min(0xffffffff, Math.round(x)));

export function scaleRecommendations(cell: Cell): GetScaleRecommendationsResponse {
  const f = cell.forecasts;
  const now = cell.scheduler.now();
  f.tick(now);
  return {
    cell: cell.path,
    tier: cell.tier,
    horizonMs: u32(f.horizonMs),
    targetUtilization: f.settings.targetUtilization,
    minAgents: u32(f.settings.minAgents),
    maxAgents: u32(f.settings.maxAgents),
    kinds: f.recommendations().map((r) => ({
      kind: r.kind,
      currentAgents: u32(r.currentAgents),
      recommendedAgents: u32(r.recommendedAgents),
      forecastRate: r.forecastRate,
      forecastServiceMs: r.forecastServiceMs,
      slotsPerAgent: r.slotsPerAgent,
      totalSlots: u32(r.totalSlots),
    })),
  };
}
