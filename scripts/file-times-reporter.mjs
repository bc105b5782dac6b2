// A node:test reporter that sums the top-level tests' durations per file and, at the end, lists
// the slowest files: CI's time budget can then be watched from any run's log (scripts/run-tests.mjs).
export default async function* fileTimes(source) {
  const byFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0) {
      const file = (event.data.file ?? '(unknown file)').replace(`${process.cwd()}/`, '');
      byFile.set(file, (byFile.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const slowest = [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 20);
  const total = [...byFile.values()].reduce((a, b) => a + b, 0);
  yield `# slowest files (of ${byFile.size}, ${(total / 1000).toFixed(0)} s in tests):\n`;
  for (const [file, ms] of slowest) yield `#   ${(ms / 1000).toFixed(1).padStart(6)} s  ${file}\n`;
}
