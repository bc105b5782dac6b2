export * from './accounts-events.ts';
export * from './code-monitoring-events.ts';
export * from './common.ts';
export * from './examples.ts';
export * from './links.ts';
export * from './sealed-token.ts';
export * from './topics.ts';
export * from './wire.ts';
