export * from './relay.ts';
export * from './schema.ts';
export { createEventStore, MAX_EVENTS_PER_APPEND } from './store.ts';
export * from './types.ts';
