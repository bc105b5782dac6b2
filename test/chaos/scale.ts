/**
 * Scale figures (`npm run chaos -- --scale`): 1, 2 and 3 notifications instances in one consumer
 * group, one queue, against one SMTP sink (a process of its own that parses only headers, so it
 * takes what three instances send). The events are all on the topic before the instances start
 * delivering them; the rate is taken between the 10th and the 90th percentile of arrivals (the
 * steady part, without the group join and the tail). CPU per process and for the whole machine
 * says what limits it. Every Message-ID must arrive once: no email is sent by two instances.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { monitorEvents, publish, recipients, sleep, Tracker, topicOf } from './load.ts';
import { startPrivatePostgres } from './postgres.ts';
import { assertBuilt, cpuSeconds, startSink, waitReady } from './processes.ts';
import { startStack } from './stack.ts';

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface ScaleRow {
  instances: number;
  emails: number;
  perSecond: number;
  duplicates: number;
  cpu: string;
  machineBusy: number;
  load: number;
}

export async function runScale(o: { quick: boolean }): Promise<{ rows: ScaleRow[]; table: string }> {
  assertBuilt();
  const emails = Number(process.env.CHAOS_SCALE_EMAILS ?? (o.quick ? 300 : 4_000));
  const postgres = await startPrivatePostgres();
  const sink = await startSink();
  const rows: ScaleRow[] = [];
  try {
    for (const n of [1, 2, 3]) {
      const stack = await startStack(postgres, sink, `scale${n}`);
      const tracker = new Tracker(sink);
      try {
        const users = recipients(100, `s${n}`);
        await publish(stack.producer, topicOf.users, users.messages);
        const monitors = monitorEvents(users.recipients, emails, `s${n}`);
        await publish(stack.producer, topicOf.monitors, monitors.messages, { chunk: 500 });
        const started = { machine: machineTicks(), sink: cpuSeconds(sink.pid), at: Date.now() };
        const instances = await Promise.all(Array.from({ length: n }, () => stack.start('notifications')));
        const cpuBefore = instances.map((i) => cpuSeconds(i.pid));
        await Promise.all(instances.map((i) => waitReady(i, 90_000)));
        const done = await tracker.waitFor(monitors.keys, 600_000);
        if (done === undefined)
          throw new Error(`${n} instance(s): ${tracker.received(monitors.keys)} of ${emails} in 600 s`);
        const elapsed = (Date.now() - started.at) / 1000;
        const machine = machineTicks();
        const times = [...tracker.times].sort((a, b) => a - b);
        const p10 = times[Math.floor(times.length * 0.1)]!;
        const p90 = times[Math.floor(times.length * 0.9)]!;
        const perInstance = instances.map((i, k) => (cpuSeconds(i.pid) - cpuBefore[k]!) / elapsed);
        rows.push({
          instances: n,
          emails,
          perSecond: (0.8 * times.length) / ((p90 - p10) / 1000),
          duplicates: tracker.duplicates().length + tracker.doubled().length,
          cpu: `${perInstance.map((c) => `${Math.round(c * 100)} %`).join(' + ')} (sink ${Math.round(((cpuSeconds(sink.pid) - started.sink) / elapsed) * 100)} %)`,
          machineBusy: (machine.busy - started.machine.busy) / (machine.total - started.machine.total),
          load: loadavg()[0] ?? 0,
        });
      } finally {
        await stack.stop();
      }
      await sleep(1_000);
    }
  } finally {
    await sink.stop();
    await postgres.stop();
  }
  const base = rows[0]?.perSecond ?? 1;
  const lines = [
    '| instances | emails | emails/s (p10-p90) | vs 1 | CPU per instance (sink) | machine busy (2 cores) | load avg | duplicates |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.instances} | ${r.emails} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / base).toFixed(2)}× | ${r.cpu} | ${Math.round(r.machineBusy * 100)} % | ${r.load.toFixed(1)} | ${r.duplicates} |`,
    ),
  ];
  return { rows, table: lines.join('\n') };
}
