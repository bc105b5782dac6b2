import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busBehaviourSuite } from './behaviour-suite.ts';
import { inProcessBus } from './in-process.ts';

let dataDir = '';
busBehaviourSuite('in-process, persisted to a data dir', {
  async setup() {
    dataDir = mkdtempSync(join(tmpdir(), 'sitemail-bus-'));
  },
  async teardown() {
    rmSync(dataDir, { recursive: true, force: true });
  },
  openBus: () => inProcessBus({ dataDir }),
  async createTopic() {},
});
