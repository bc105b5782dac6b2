const a = process.memoryUsage().rss;
await import('typebox');
console.log('plain node typebox', ((process.memoryUsage().rss - a) / 1e6).toFixed(0));
const b = process.memoryUsage().rss;
await import('@electric-sql/pglite');
console.log('plain node pglite', ((process.memoryUsage().rss - b) / 1e6).toFixed(0));
