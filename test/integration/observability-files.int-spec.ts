import { MetricsService } from '@app/observability';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { parse } from 'yaml';
import { RunningApi, startApi } from '../support/api';
import { RunningWorker, startWorker } from '../support/worker';

const ROOT = join(__dirname, '../..');

/** PromQL words that are not metric names. */
const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'le',
]);

/**
 * The metric names a PromQL expression reads: label matchers, grouping clauses, ranges,
 * strings and function calls taken out, what is left are selectors.
 */
export function metricsIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [...bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)]
    .filter((m) => !m[2] && !PROMQL_WORDS.has(m[1]) && !/^\d/.test(m[1]))
    .map((m) => m[1]);
  return [...new Set(names)];
}

/** Every series name an exposition offers (histograms as _bucket, _sum and _count). */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    if (type === 'histogram' || type === 'summary')
      for (const s of ['_bucket', '_sum', '_count', '']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

/**
 * Every metric the Grafana dashboard and the Prometheus rules in deploy/grafana query is
 * one the api or the worker (all roles) exports, so a renamed metric fails here rather
 * than leaving a panel or an alert silently empty.
 */
describe('dashboard and alert rules (integration)', () => {
  let api: RunningApi;
  let worker: RunningWorker;

  beforeAll(async () => {
    api = await startApi();
    worker = await startWorker();
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  const expressions = (): Array<[where: string, expr: string]> => {
    const dashboard = JSON.parse(
      readFileSync(join(ROOT, 'deploy/grafana/dashboard.json'), 'utf8'),
    ) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    const rules = parse(readFileSync(join(ROOT, 'deploy/grafana/alerts.rules.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    return [
      ...dashboard.panels.flatMap((p) =>
        (p.targets ?? []).map((t): [string, string] => [`panel "${p.title}"`, t.expr]),
      ),
      ...rules.groups.flatMap((g) =>
        g.rules.map((r): [string, string] => [`alert ${r.alert}`, r.expr]),
      ),
    ];
  };

  it('reads metric names out of PromQL (and so can find a wrong one)', () => {
    expect(
      metricsIn(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_x_bucket{a="b"}[5m]))) > 1 and max(up_thing) or foo',
      ),
    ).toEqual(['http_x_bucket', 'up_thing', 'foo']);
  });

  it('queries only metrics the processes export', async () => {
    const apiText = (await request(api.server).get('/metrics').expect(200)).text;
    const workerText = (await worker.app.get(MetricsService).render()).body;
    const known = new Set([...exported(apiText), ...exported(workerText)]);
    const missing = expressions().flatMap(([where, expr]) =>
      metricsIn(expr)
        .filter((m) => !known.has(m))
        .map((m) => `${where}: ${m}`),
    );
    expect(missing).toEqual([]);
    expect(expressions().length).toBeGreaterThan(20);
  });
});
