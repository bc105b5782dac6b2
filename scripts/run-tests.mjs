#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: the whole repo) with node:test + tsx.
// Node 20's --test takes no globs, so the files are listed here.
//
// With DATABASE_URL set, a second pass runs the database-backed integration suites of packages/
// and services/ on PGlite too, so both engines are proven in one command. The run fails when any
// test failed, was skipped, or is a todo, and ends with one summary line for the whole run.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('--'));
const flags = args.filter((a) => a.startsWith('--'));
const skipDirs = new Set(['node_modules', 'dist', '.turbo', '.data', '.git']);

function findTests(dirs) {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      if (skipDirs.has(name)) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.test.ts')) found.push(path);
    }
  };
  for (const dir of dirs.length ? dirs : ['.']) walk(resolve(dir));
  const filter = process.env.TEST_FILES ? new RegExp(process.env.TEST_FILES) : null;
  return found.sort().filter((f) => !filter || filter.test(f));
}

// A test reaches a database only through testkit's testDatabase, @sitemail/db's openDatabase or
// DATABASE_URL; a file that names none of them, nor do the files it names by a relative path
// (imports, child scripts), runs the same on both engines, so the PGlite pass leaves it out (the bus's Kafka suites, the
// SMTP and HTTP-only suites: minutes of CI that proved nothing new).
const dbWords = /DATABASE_URL|testDatabase|TestDatabase|openDatabase|pglite/i;
function usesDatabase(file, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  let source;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  if (dbWords.test(source)) return true;
  // Imports, and paths of scripts it starts as a child process: any quoted './…' or '../…'.
  for (const [, spec] of source.matchAll(/['"`](\.\.?\/[^'"`$]+)['"`]/g)) {
    if (usesDatabase(resolve(dirname(file), spec), seen)) return true;
  }
  return false;
}

const fileTimesReporter = new URL('./file-times-reporter.mjs', import.meta.url).href;

function runPass(label, files, env) {
  const timesFile = join(mkdtempSync(join(tmpdir(), 'sitemail-test-times-')), 'times.txt');
  const started = Date.now();
  return new Promise((done) => {
    console.log(`\n=== ${label}: ${files.length} test files ===`);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-reporter=tap',
        '--test-reporter-destination=stdout',
        `--test-reporter=${fileTimesReporter}`,
        `--test-reporter-destination=${timesFile}`,
        '--test-concurrency=1',
        '--test-timeout=240000',
        ...flags,
        ...files.map((f) => relative(process.cwd(), f)),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env },
    );
    const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.on('close', (code) => {
      const wall = `${((Date.now() - started) / 1000).toFixed(0)} s wall`;
      if (existsSync(timesFile)) console.log(`\n${label} (${wall})\n${readFileSync(timesFile, 'utf8')}`);
      else console.log(`\n${label}: ${wall}`);
      for (const key of Object.keys(counts)) {
        const m = tail.match(new RegExp(`^# ${key} (\\d+)$`, 'm'));
        if (m) counts[key] = Number(m[1]);
      }
      done({ code: code ?? 1, counts });
    });
  });
}

const files = findTests(roots);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const passes = [];
const dbLabel = process.env.DATABASE_URL ? 'Postgres (DATABASE_URL)' : 'PGlite';
passes.push(await runPass(`all tests, database: ${dbLabel}`, files, process.env));
if (process.env.DATABASE_URL && process.env.SKIP_PGLITE_PASS !== '1') {
  const intSuites = files.filter((f) => /[/\\](packages|services)[/\\].*\.int\.test\.ts$/.test(f));
  const dbSuites = intSuites.filter((f) => usesDatabase(f));
  const noDb = intSuites.filter((f) => !dbSuites.includes(f));
  if (noDb.length > 0)
    console.log(
      `\nnot run again on PGlite (no database in them): ${noDb.map((f) => relative(process.cwd(), f)).join(', ')}`,
    );
  if (dbSuites.length > 0) {
    const { DATABASE_URL: _omit, ...pgliteEnv } = process.env;
    passes.push(await runPass('integration suites again, database: PGlite', dbSuites, pgliteEnv));
  }
}
const total = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
for (const p of passes) for (const k of Object.keys(total)) total[k] += p.counts[k];
const failed = passes.some((p) => p.code !== 0) || total.fail > 0 || total.cancelled > 0;
const notRun = total.skipped + total.todo;
if (notRun > 0) console.error(`\n${notRun} test(s) skipped or todo: not allowed on main`);
console.log(`\ntests: ${total.pass} passed, ${total.fail + total.cancelled} failed`);
process.exit(failed || notRun > 0 ? 1 : 0);
