export * from './commands.ts';
export * from './decide.ts';
export * from './evolve.ts';
export * from './refusals.ts';
export * from './types.ts';
