/**
 * One row per scenario and the verdict rules. A row fails when an expected email is missing, when
 * one event became two emails (two Message-IDs for one key), when a Message-ID arrived twice
 * outside the at-least-once window (an email the sink accepted in the moments around a crash or
 * an outage, whose sender never recorded it: resent with the same Message-ID), or when delivery
 * did not recover within the scenario's stated bound.
 */
import type { Tracker } from './load.ts';

export interface FaultWindow {
  /** When the sink may have accepted an email its sender could not record (ms since epoch). */
  from: number;
  to: number;
  what: string;
}

export interface Row {
  scenario: string;
  eventsIn: number;
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  /** Duplicates whose first copy arrived inside a fault window (documented at-least-once). */
  explained: number;
  doubled: number;
  /** From the fault's end to the first email after it (ms). */
  recoverMs: number | undefined;
  /** From the fault's end to the last expected email (ms). */
  drainedMs: number | undefined;
  boundMs: number;
  stalled: string;
  extra: string;
  failures: string[];
}

export interface Verdict {
  keys: string[];
  tracker: Tracker;
  faultEnd: number;
  windows: FaultWindow[];
  boundMs: number;
  stalled: string | undefined;
  eventsIn: number;
  drainedAt: number | undefined;
  extra?: string;
  failures?: string[];
}

export function judge(scenario: string, v: Verdict): Row {
  const { tracker } = v;
  const received = tracker.received(v.keys);
  const duplicates = tracker.duplicates();
  const explained = duplicates.filter((d) => v.windows.some((w) => d.firstAt >= w.from && d.firstAt <= w.to));
  const dupCount = duplicates.reduce((n, d) => n + d.extra, 0);
  const explainedCount = explained.reduce((n, d) => n + d.extra, 0);
  const doubled = tracker.doubled();
  const recoveredAt = tracker.firstAfter(v.faultEnd);
  const drainedMs = v.drainedAt !== undefined ? Math.max(0, v.drainedAt - v.faultEnd) : undefined;
  const failures = [...(v.failures ?? [])];
  const lost = v.keys.length - received;
  if (lost > 0) failures.push(`${lost} expected email(s) not received`);
  if (doubled.length > 0)
    failures.push(`${doubled.length} event(s) became two emails: ${doubled.slice(0, 3)}`);
  if (dupCount > explainedCount)
    failures.push(`${dupCount - explainedCount} duplicate(s) outside the at-least-once window`);
  if (drainedMs === undefined || drainedMs > v.boundMs)
    failures.push(`not recovered within ${Math.round(v.boundMs / 1000)} s of the fault's end`);
  if (v.stalled) failures.push(`stalled: ${v.stalled}`);
  return {
    scenario,
    eventsIn: v.eventsIn,
    expected: v.keys.length,
    received,
    lost,
    duplicates: dupCount,
    explained: explainedCount,
    doubled: doubled.length,
    recoverMs: recoveredAt !== undefined ? Math.max(0, recoveredAt - v.faultEnd) : undefined,
    drainedMs,
    boundMs: v.boundMs,
    stalled: v.stalled ? `yes: ${v.stalled}` : 'no',
    extra: v.extra ?? '',
    failures,
  };
}

const secs = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);

export function table(rows: Row[]): string {
  const header = [
    'scenario',
    'events in',
    'emails expected',
    'received',
    'lost',
    'duplicates (in window)',
    'recovered / drained (bound)',
    'consumer stalled?',
    'ok',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    String(r.eventsIn),
    String(r.expected),
    String(r.received),
    String(r.lost),
    `${r.duplicates} (${r.explained})`,
    `${secs(r.recoverMs)} / ${secs(r.drainedMs)} (${secs(r.boundMs)})`,
    r.stalled,
    r.failures.length === 0 ? 'yes' : 'NO',
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)];
  for (const r of rows) {
    if (r.extra) out.push(`- ${r.scenario}: ${r.extra}`);
    for (const f of r.failures) out.push(`- ${r.scenario}: FAILED: ${f}`);
  }
  return out.join('\n');
}
