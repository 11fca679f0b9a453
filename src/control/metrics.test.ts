import { describe, expect, it } from 'vitest';
import { RuleMetrics } from './metrics.js';
import type { ActionResult } from '../actions/results.js';
import { ruleFromLabel as rule } from '../../test/helpers/rule.js';

const action = (rule: string, ok: boolean, durationMs: number): ActionResult => ({ kind: 'program', target: '/bin/x', rule, ok, error: ok ? null : 'exit code 1', durationMs });

describe('RuleMetrics', () => {
  it('counts matches and failed actions per rule and gives latency percentiles', () => {
    const metrics = new RuleMetrics();
    const a = rule('a (f:1:3)');
    for (let i = 1; i <= 100; i++) metrics.observe([a], [action('a (f:1:3)', i % 10 !== 0, i)]);
    metrics.observe([rule('b (f:9:3)')], []);
    expect(metrics.rows()).toEqual([
      { rule: 'a (f:1:3)', matched: 100, actions: 100, failed: 10, debounced: 0, cancelled: 0, p50Ms: 51, p95Ms: 96 },
      { rule: 'b (f:9:3)', matched: 1, actions: 0, failed: 0, debounced: 0, cancelled: 0, p50Ms: null, p95Ms: null },
    ]);
  });

  it('counts a rule\'s actions (named by the line that asked) with its matches (named by its own line)', () => {
    const metrics = new RuleMetrics();
    metrics.observe([rule('up (/r/10.yaml:2:5)')], [action('up (/r/10.yaml:5:11)', true, 3)]);
    metrics.observeAction({ kind: 'debounce', target: '1000 ms', rule: 'up (/r/10.yaml:2:5)', ok: false, error: 'cancelled: link-down came after 200 ms', durationMs: 200 });
    metrics.observe([rule('up (/r/20.yaml:2:5)')], []);
    expect(metrics.rows()).toEqual([
      { rule: 'up (/r/10.yaml:2:5)', matched: 1, actions: 1, failed: 0, debounced: 0, cancelled: 1, p50Ms: 3, p95Ms: 3 },
      { rule: 'up (/r/20.yaml:2:5)', matched: 1, actions: 0, failed: 0, debounced: 0, cancelled: 0, p50Ms: null, p95Ms: null },
    ]);
  });

  it('goes on counting a rule across a reload that moved it (its name in its file)', () => {
    const metrics = new RuleMetrics();
    metrics.observe([rule('up (/r/10.yaml:2:5)')], []);
    metrics.observe([rule('up (/r/10.yaml:7:5)')], []); // reloaded: another object, another line
    metrics.observe([rule('up (/r/10.yaml:7:5)')], []);
    expect(metrics.rows()).toEqual([{ rule: 'up (/r/10.yaml:7:5)', matched: 3, actions: 0, failed: 0, debounced: 0, cancelled: 0, p50Ms: null, p95Ms: null }]);
  });

  it('keeps a bounded window of recent samples', () => {
    const metrics = new RuleMetrics();
    for (let i = 0; i < 2000; i++) metrics.observeAction(action('a', true, i < 1000 ? 1000 : 1));
    expect(metrics.rows()[0]).toMatchObject({ actions: 2000, p95Ms: 1 });
  });
});
