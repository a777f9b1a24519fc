/**
 * Applies an LSP WorkspaceEdit to files on disk: what VS Code's language client does to
 * the buffers, enough of it for the daemon's edits (CreateFile, then TextDocumentEdit).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Position { line: number; character: number }
interface TextEdit { range: { start: Position; end: Position }; newText: string }

export function applyWorkspaceEditOnDisk(edit: any): void {
  for (const change of edit.documentChanges ?? []) {
    if (change.kind === 'create') {
      const file = fileURLToPath(change.uri);
      if (existsSync(file) && !change.options?.overwrite) {
        if (change.options?.ignoreIfExists) continue;
        throw new Error(`CreateFile: ${file} exists`);
      }
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, '');
    } else if (change.kind === undefined && change.textDocument) {
      applyTextEdits(fileURLToPath(change.textDocument.uri), change.edits);
    } else {
      throw new Error(`unsupported document change ${JSON.stringify(change)}`);
    }
  }
  for (const [uri, edits] of Object.entries(edit.changes ?? {})) applyTextEdits(fileURLToPath(uri), edits as TextEdit[]);
}

function applyTextEdits(file: string, edits: TextEdit[]): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  // JavaScript strings index UTF-16 code units, which is what LSP positions count by default.
  const sorted = [...edits].sort((a, b) => offsetOf(text, b.range.start) - offsetOf(text, a.range.start));
  for (const e of sorted) {
    text = text.slice(0, offsetOf(text, e.range.start)) + e.newText + text.slice(offsetOf(text, e.range.end));
  }
  writeFileSync(file, text);
}

function offsetOf(text: string, position: Position): number {
  let offset = 0;
  for (let line = 0; line < position.line; line++) {
    const next = text.indexOf('\n', offset);
    if (next === -1) return text.length;
    offset = next + 1;
  }
  const lineEnd = text.indexOf('\n', offset);
  return Math.min(offset + position.character, lineEnd === -1 ? text.length : lineEnd);
}
