/**
 * One line per tool call, for the progress lines of a chat answer ("Reading src/app.py").
 * Arguments come from the model, so every one is checked before it is shown.
 */
import type { ToolCallParams } from './protocol';

export function describeToolCall(name: string, args: Record<string, unknown>): string {
  const path = text(args.path);
  switch (name) {
    case 'read_file':
      return `Reading ${path ?? 'a file'}${lineRange(args)}`;
    case 'list_directory':
      return path && path !== '.' ? `Listing ${path}` : 'Listing the workspace';
    case 'search_text': {
      const where = path ? ` in ${path}` : text(args.glob) ? ` in ${text(args.glob)}` : '';
      return `Searching for "${text(args.pattern) ?? ''}"${where}`;
    }
    case 'find_files':
      return `Finding files matching ${text(args.glob) ?? '*'}`;
    case 'write_file':
      return `Writing ${path ?? 'a file'}`;
    case 'edit_file':
      return `Editing ${path ?? 'a file'}`;
    case 'delete_file':
      return `Deleting ${path ?? 'a file'}`;
    case 'run_command':
      return `Running ${text(args.command) ?? 'a command'}`;
    default:
      return `Running the tool ${name}`;
  }
}

/**
 * The progress line for a status change worth showing, or undefined when the change adds
 * nothing for the user (running, completed, cancelled: the first line already says it).
 */
export function describeToolCallUpdate(call: ToolCallParams): string | undefined {
  const label = describeToolCall(call.name, call.arguments ?? {});
  switch (call.status) {
    case 'awaiting_permission':
      return `Waiting for your approval: ${label}`;
    case 'denied':
      return `Not done (you denied it): ${label}`;
    case 'failed':
      return `Failed: ${label}. ${firstLine(call.error ?? 'No reason given.')}`;
    case 'pending':
    case 'running':
    case 'completed':
    case 'cancelled':
      return undefined;
    default:
      return `${label}: ${call.status}`; // an unknown status is shown as is (protocol section 11)
  }
}

/** The workspace-relative path a completed write changed, for a clickable reference. */
export function changedPath(call: ToolCallParams): string | undefined {
  if (call.status !== 'completed') return undefined;
  if (call.name !== 'write_file' && call.name !== 'edit_file') return undefined;
  return text(call.arguments?.path);
}

function lineRange(args: Record<string, unknown>): string {
  const start = typeof args.start_line === 'number' ? args.start_line : undefined;
  const end = typeof args.end_line === 'number' ? args.end_line : undefined;
  if (start !== undefined && end !== undefined) return ` (lines ${start}-${end})`;
  if (start !== undefined) return ` (from line ${start})`;
  return '';
}

function text(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const line = firstLine(value);
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function firstLine(value: string): string {
  return value.split('\n', 1)[0];
}
