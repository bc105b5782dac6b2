/**
 * Just enough of a Dockerfile reader to take a target apart: its stages, each instruction with
 * line continuations joined, and what a target inherits (ENV, WORKDIR, USER, CMD) from the stages
 * it is built FROM. Exec-form CMD only (JSON array); that is all the production file uses.
 */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  from: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      i++;
      // Comment lines inside a continuation are dropped, as Docker does.
      while (i + 1 < lines.length && /^\s*#/.test(lines[i] ?? '')) i++;
      line = `${line.trimEnd().slice(0, -1)} ${(lines[i] ?? '').trim()}`;
    }
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`Dockerfile line ${start}: cannot read "${line}"`);
    const keyword = m[1].toUpperCase();
    const args = m[2].replace(/\s+/g, ' ').trim();
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from?.[1]) throw new Error(`Dockerfile line ${start}: cannot read FROM ${args}`);
      stages.push({ from: from[1], name: from[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${start}: ${keyword} before any FROM`);
    stage.instructions.push({ keyword, args, line: start });
  }
  return stages;
}

/** The stage and the stages it is built FROM inside this file, base first. */
export function stageChain(stages: Stage[], target: string): Stage[] {
  const chain: Stage[] = [];
  let current = stages.find((s) => s.name === target);
  if (!current) throw new Error(`no stage "${target}"`);
  while (current) {
    chain.unshift(current);
    const parent: string = current.from;
    current = stages.find((s) => s.name === parent);
  }
  return chain;
}

/** `ENV A=1 B="two"` (the key=value form) into pairs. */
export function envPairs(args: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const m of args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const [, key, raw] = m;
    if (!key || raw === undefined) continue;
    pairs.push([key, raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
  }
  return pairs;
}

export interface TargetImage {
  /** Every instruction of the chain, base stage first. */
  instructions: Instruction[];
  env: Record<string, string>;
  workdir: string | undefined;
  user: string | undefined;
  cmd: string[];
  /** The external image the chain starts from. */
  baseImage: string;
}

export function targetImage(stages: Stage[], target: string): TargetImage {
  const chain = stageChain(stages, target);
  const instructions = chain.flatMap((s) => s.instructions);
  const env: Record<string, string> = {};
  let workdir: string | undefined;
  let user: string | undefined;
  let cmd: string[] | undefined;
  for (const ins of instructions) {
    if (ins.keyword === 'ENV') for (const [k, v] of envPairs(ins.args)) env[k] = v;
    if (ins.keyword === 'WORKDIR') workdir = ins.args;
    if (ins.keyword === 'USER') user = ins.args;
    if (ins.keyword === 'CMD') cmd = JSON.parse(ins.args) as string[];
  }
  if (!cmd) throw new Error(`target ${target} has no CMD`);
  return { instructions, env, workdir, user, cmd, baseImage: chain[0]?.from ?? '' };
}
