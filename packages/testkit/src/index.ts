export * from './db.ts';
export * from './db-outage.ts';
export * from './kafka.ts';
export * from './smtp.ts';
export * from './specification.ts';
