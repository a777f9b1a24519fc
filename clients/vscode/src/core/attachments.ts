/**
 * Files the user attached to a message (`#file`, a selection). The daemon's model reads
 * the workspace through its tools, so it is told which paths were attached and reads them
 * itself, rather than getting a copy in the prompt.
 */
export interface Attachment {
  /** Workspace-relative tool path. */
  path: string;
  /** 1-based lines of an attached selection. */
  lines?: { start: number; end: number };
}

export function promptWithAttachments(prompt: string, attachments: readonly Attachment[]): string {
  if (attachments.length === 0) return prompt;
  const list = attachments
    .map((a) => (a.lines ? `${a.path} (lines ${a.lines.start}-${a.lines.end})` : a.path))
    .join(', ');
  return `${prompt}\n\n(Attached by the user, relative to the workspace: ${list}. Read them with read_file.)`;
}
