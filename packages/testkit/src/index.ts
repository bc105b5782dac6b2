export * from './db.ts';
export * from './kafka.ts';
export * from './smtp.ts';
export * from './specification.ts';
