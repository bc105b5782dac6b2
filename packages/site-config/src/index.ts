export * from './helpers.ts';
export * from './link-token-key.ts';
export * from './parse.ts';
export * from './source.ts';
export type * from './types.ts';
