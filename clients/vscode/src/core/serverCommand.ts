/**
 * Finding the daemon to run. Checked before starting, because a missing program would
 * otherwise surface as a bare "spawn ENOENT" from the language client.
 */
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';
import { CommandIds } from './commandIds';
import type { Explanation } from './explanation';

export const DEFAULT_SERVER_PROGRAM = 'ollama-chatd';

export type ServerCommand =
  | { kind: 'found'; command: string; args: string[] }
  | { kind: 'missing'; program: string; explanation: Explanation };

export interface Environment {
  PATH?: string;
  PATHEXT?: string;
  platform: NodeJS.Platform;
}

export function currentEnvironment(): Environment {
  return { PATH: process.env.PATH, PATHEXT: process.env.PATHEXT, platform: process.platform };
}

/** `serverCommand` is a command line (so `python -m ollama_chatd` works); `serve` is added. */
export function resolveServerCommand(serverCommand: string, env: Environment = currentEnvironment()): ServerCommand {
  const words = parseCommandLine(serverCommand);
  const program = words[0] ?? DEFAULT_SERVER_PROGRAM;
  const found = findExecutable(program, env);
  if (found === undefined) {
    return { kind: 'missing', program, explanation: explainMissingServer(program, serverCommand.trim() !== '', env) };
  }
  return { kind: 'found', command: found, args: [...words.slice(1), 'serve'] };
}

/** Splits like a POSIX shell would for simple cases: blanks separate, quotes group. */
export function parseCommandLine(line: string): string[] {
  const words: string[] = [];
  const pattern = /"((?:\\.|[^"\\])*)"|'([^']*)'|(\S+)/g;
  for (const match of line.matchAll(pattern)) {
    words.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : (match[2] ?? match[3]));
  }
  return words;
}

/** The full path of `program` (a path, or a name looked up on PATH), if it can be run. */
export function findExecutable(program: string, env: Environment): string | undefined {
  const windows = env.platform === 'win32';
  const extensions = windows ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';')] : [''];
  const candidates = program.includes('/') || (windows && program.includes('\\'))
    ? [program]
    : (env.PATH ?? '').split(windows ? ';' : ':').filter(Boolean).map((dir) => path.join(dir, program));
  for (const candidate of candidates) {
    for (const extension of extensions) {
      if (isExecutableFile(candidate + extension, windows)) return candidate + extension;
    }
  }
  return undefined;
}

/** pipx keeps the daemon's dependencies apart from everything else, so prefer it. */
export function installCommand(env: Environment = currentEnvironment()): string {
  return findExecutable('pipx', env) !== undefined ? 'pipx install ollama-chatd' : 'pip install ollama-chatd';
}

export function explainMissingServer(program: string, configured: boolean, env: Environment = currentEnvironment()): Explanation {
  const install = installCommand(env);
  const where = configured
    ? `The program \`${program}\` named by **ollamaChat.serverCommand** does not exist or cannot be run.`
    : `\`${program}\` was not found on your PATH.`;
  return {
    markdown:
      `${where} This extension talks to Ollama through **ollama-chatd**, a small Python program. ` +
      `Install it with \`${install}\` (Python 3.11 or newer), then run **Ollama: Restart Server**. ` +
      'If it is installed somewhere else, set **ollamaChat.serverCommand** to its full path.',
    actions: [
      { title: 'Copy install command', command: CommandIds.copyToClipboard, arguments: [install] },
      { title: 'Set Server Command', command: CommandIds.openSettings, arguments: ['ollamaChat.serverCommand'] },
      { title: 'Restart Server', command: CommandIds.restartServer },
    ],
  };
}

function isExecutableFile(file: string, windows: boolean): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    if (!windows) accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
