/** Temporary folders that are removed when the test process exits. */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const created: string[] = [];

process.on('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

export function makeTempDir(prefix: string): string {
  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)));
  created.push(dir);
  return dir;
}

/**
 * The daemon stores chats in the user's data directory (XDG_DATA_HOME on Linux); the
 * tests' daemons use one of their own per test file, never the user's.
 */
export const TEST_DATA_HOME = makeTempDir('ollama-chat-data-');
