export * from './commands.ts';
export * from './decide.ts';
export * from './decider.ts';
export * from './evolve.ts';
export { isRefusal, type Refusal, type RefusalCode, refuse } from './refusals.ts';
export * from './types.ts';
