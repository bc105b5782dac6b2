// Types of runtime-files.mjs for the TypeScript that imports it (test/production).
export declare const buildWorkspaces: string[];
export declare const runtimeWorkspaces: string[];
export declare const runtimeRootFiles: string[];
export declare const runtimeInstall: string[];
export declare function serviceEntry(name: string): string[];
export declare function serviceCommand(name: string): { nodeArgs: string[]; entry: string };
export declare function runtimeFiles(root?: string): string[];
export declare function assembleRuntime(
  dest: string,
  opts?: { root?: string; install?: boolean; npmFlags?: string[] },
): string[];
