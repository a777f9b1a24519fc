/**
 * Tool paths are relative to the first workspace folder; with several folders they start
 * with a folder's name (protocol section 10.1). This maps them back to files on disk.
 */
import * as path from 'node:path';

export interface WorkspaceFolderLike {
  name: string;
  fsPath: string;
}

export function resolveToolPath(toolPath: string, folders: readonly WorkspaceFolderLike[]): string | undefined {
  if (folders.length === 0 || toolPath === '' || path.isAbsolute(toolPath)) return undefined;
  const segments = toolPath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return undefined;
  if (folders.length === 1) return path.join(folders[0].fsPath, ...segments);
  const folder = folders.find((f) => f.name === segments[0]);
  return folder ? path.join(folder.fsPath, ...segments.slice(1)) : undefined;
}

/** The inverse: a file on disk as a tool path, or undefined when it is outside the folders. */
export function toolPathOf(fsPath: string, folders: readonly WorkspaceFolderLike[]): string | undefined {
  for (const folder of folders) {
    const relative = path.relative(folder.fsPath, fsPath);
    if (relative.startsWith('..') || path.isAbsolute(relative)) continue;
    const segments = relative.split(path.sep).filter(Boolean);
    return (folders.length > 1 ? [folder.name, ...segments] : segments).join('/') || '.';
  }
  return undefined;
}
