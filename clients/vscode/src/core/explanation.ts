/**
 * What the user is told when something goes wrong: a short markdown text that says what
 * happened and how to fix it, and buttons that do the fix (run a command).
 */
export interface FixAction {
  title: string;
  command: string;
  arguments?: unknown[];
}

export interface Explanation {
  /** Markdown for the chat view. */
  markdown: string;
  actions: FixAction[];
}

/** The same text for a notification, which shows markdown marks literally. */
export function asPlainText(markdown: string): string {
  return markdown.replace(/\*\*(.+?)\*\*/g, '$1').replace(/`([^`]+)`/g, '"$1"');
}
