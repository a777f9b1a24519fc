/** The workspace files among a chat request's references, as tool paths. */
import type * as vscode from 'vscode';
import type { Attachment } from '../core/attachments';
import { toolPathOf, type WorkspaceFolderLike } from '../core/workspacePaths';

export function attachmentsOf(references: readonly vscode.ChatPromptReference[], folders: readonly WorkspaceFolderLike[]): Attachment[] {
  const attachments: Attachment[] = [];
  for (const reference of references) {
    const value = reference.value as any;
    // Duck-typed: a Uri has fsPath and scheme, a Location has uri and range.
    const uri = value?.scheme === 'file' ? value : value?.uri?.scheme === 'file' ? value.uri : undefined;
    const toolPath = uri ? toolPathOf(uri.fsPath, folders) : undefined;
    if (toolPath === undefined) continue;
    const range = value?.range;
    attachments.push(
      range ? { path: toolPath, lines: { start: range.start.line + 1, end: range.end.line + 1 } } : { path: toolPath },
    );
  }
  return attachments;
}
