import Type, { type Static } from 'typebox';
import { Timestamp, Uuid } from './common.ts';

export const CODE_MONITORING_SCHEMA_VERSION = 1 as const;

/** Emitted by the code-monitoring service of the fleet when a monitor finds new results. */
export const CodeMonitorTriggered = Type.Object(
  {
    id: Type.String({ ...Uuid, description: 'Unique event id; consumers deduplicate on it' }),
    type: Type.Literal('CodeMonitorTriggered'),
    userId: Type.String({ ...Uuid, description: 'The owner of the monitor, who receives the notification' }),
    position: Type.Integer({
      minimum: 1,
      description: "Position in the monitor owner's stream of notifications",
    }),
    time: Timestamp,
    schemaVersion: Type.Literal(CODE_MONITORING_SCHEMA_VERSION),
    data: Type.Object({
      monitorId: Uuid,
      monitorName: Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'User-provided; escape when rendering',
      }),
      query: Type.String({ minLength: 1, maxLength: 4096 }),
      resultCount: Type.Integer({ minimum: 1 }),
      resultsPath: Type.String({
        pattern: '^/',
        description: 'Path of the results page, relative to externalURL',
      }),
    }),
  },
  {
    $id: 'CodeMonitorTriggered',
    title: 'CodeMonitorTriggered',
    description: 'A code monitor found new results.',
  },
);
export type CodeMonitorTriggered = Static<typeof CodeMonitorTriggered>;
