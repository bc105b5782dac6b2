export * from './db.ts';
export * from './kafka.ts';
