/**
 * A command's output (`run_command`) in the chat answer while it runs: a code block, headed
 * by the command, that grows with each `running` update and closes when the call ends
 * (protocol section 10.8).
 * Each update carries the output's last characters and how many there were in all, so
 * only the characters not shown yet are added.
 */
import type { ToolCallParams } from './protocol';

// Longer than any run of backticks left in the output (see `fenced`), so the output
// cannot close the block early.
const FENCE = '``````';
const ENDED = new Set(['completed', 'failed', 'cancelled', 'denied']);

export class CommandOutput {
  private readonly shownLength = new Map<string, number>();
  private openCall: string | undefined;
  private atLineStart = true;

  /** The markdown to add to the answer for this update of a call ('' for none). */
  update(call: ToolCallParams): string {
    if (call.name !== 'run_command') return '';
    if (ENDED.has(call.status)) return this.openCall === call.callId ? this.close() : '';
    if (call.status !== 'running' || call.output === undefined || call.outputLength === undefined) return '';
    const fresh = call.outputLength - (this.shownLength.get(call.callId) ?? 0);
    this.shownLength.set(call.callId, call.outputLength);
    if (fresh <= 0) return '';
    let markdown = this.openCall === call.callId ? '' : `${this.close()}\n\n${FENCE}text\n${commandLine(call)}`;
    this.openCall = call.callId;
    if (fresh > call.output.length) {
      markdown += `${this.atLineStart ? '' : '\n'}[... ${fresh - call.output.length} characters not shown ...]\n`;
      this.atLineStart = true;
    }
    const text = fenced(call.output.slice(-Math.min(fresh, call.output.length)));
    this.atLineStart = text.endsWith('\n');
    return markdown + text;
  }

  /** Closes the open block, if any: at a call's end, and at the turn's end whatever happened. */
  close(): string {
    if (this.openCall === undefined) return '';
    this.openCall = undefined;
    const markdown = `${this.atLineStart ? '' : '\n'}${FENCE}\n\n`;
    this.atLineStart = true;
    return markdown;
  }
}

/** The block's first line: the command, as a terminal shows it. */
function commandLine(call: ToolCallParams): string {
  const command = call.arguments?.command;
  return typeof command === 'string' ? `$ ${fenced(command).replace(/\n/g, ' ')}\n` : '';
}

/** Output text that stays inside the block: line ends as markdown knows them, and no run of
 * backticks as long as the fence (a zero-width space breaks it without changing what shows). */
function fenced(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/`{6,}/g, (run) => run.split('').join('\u200b'));
}
