// A node:test reporter that lists the slowest files at the end of a pass, so that CI's time budget
// can be watched from any run's log (scripts/run-tests.mjs). Per file: its wall time (the file's
// process from start to exit: Node and tsx start-up, imports, file-level before/after hooks and
// every test) and the sum of its top-level tests' durations (what the tests themselves took).
export default async function* fileTimes(source) {
  const testsMs = new Map();
  const wallMs = new Map();
  const short = (file) => (file ?? '(unknown file)').replace(`${process.cwd()}/`, '');
  for await (const event of source) {
    const { data } = event;
    if (data?.nesting !== 0) continue;
    if (event.type === 'test:complete' && data.file && data.name === data.file) {
      // The file itself (its process), reported once it exited.
      wallMs.set(short(data.file), data.details?.duration_ms ?? 0);
    } else if (event.type === 'test:pass' || event.type === 'test:fail') {
      const file = short(data.file);
      testsMs.set(file, (testsMs.get(file) ?? 0) + (data.details?.duration_ms ?? 0));
    }
  }
  // Tests declared in a shared helper (the bus's behaviour-suite.ts) are reported under the
  // helper: it gets a row of its own, with no wall time, and its time is also in its test files'.
  const files = new Set([...wallMs.keys(), ...testsMs.keys()]);
  const rows = [...files].map((f) => [f, wallMs.get(f), testsMs.get(f) ?? 0]);
  const slowest = rows.sort((a, b) => (b[1] ?? b[2]) - (a[1] ?? a[2])).slice(0, 20);
  const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0) / 1000;
  const s = (ms) => (ms === undefined ? '       -' : `${(ms / 1000).toFixed(1).padStart(6)} s`);
  yield `# slowest files (of ${wallMs.size}; ${sum(wallMs).toFixed(0)} s in files, ${sum(testsMs).toFixed(0)} s of it in tests):\n`;
  yield '#     file    tests\n';
  for (const [file, wall, tests] of slowest) yield `# ${s(wall)} ${s(tests)}  ${file}\n`;
}
