/**
 * Shows one turn in the chat view as the daemon reports it: answer text as markdown,
 * thinking and tool calls as progress lines (never mixed into the answer), a command's
 * output as a code block growing while it runs, changed files as references, and how the
 * turn ended.
 */
import * as vscode from 'vscode';
import type { TurnListener, TurnOutcome } from '../core/chatClient';
import { CommandOutput } from '../core/commandOutput';
import { explainFailure } from '../core/explainFailure';
import type { Explanation } from '../core/explanation';
import type { ChatStatusParams, TokenKind, ToolCallParams } from '../core/protocol';
import { WRITE_TOOLS } from '../core/protocol';
import { changedPath, describeToolCall, describeToolCallUpdate } from '../core/toolCallLabels';

export class ResponseRenderer implements TurnListener {
  private inThought = false;
  private saidWaiting = false;
  private wroteAnswer = false;
  private readonly announcedCalls = new Set<string>();
  private readonly referencedFiles = new Set<string>();
  private readonly commandOutput = new CommandOutput();
  /** Whether a change to a file was made in this turn (a revert then has something to undo). */
  changedFiles = false;

  constructor(
    private readonly stream: vscode.ChatResponseStream,
    private readonly resolveToolPath: (toolPath: string) => vscode.Uri | undefined,
  ) {}

  onToken(kind: TokenKind, text: string): void {
    if (kind === 'content') {
      this.inThought = false;
      this.wroteAnswer = true;
      this.endCommandOutput();
      this.stream.markdown(text);
    } else if (kind === 'thinking' && !this.inThought) {
      // One line per stretch of thinking: the reasoning itself would drown the answer.
      this.inThought = true;
      this.progress('Thinking…');
    }
    // Unknown kinds are not shown (protocol section 11).
  }

  onToolCall(call: ToolCallParams): void {
    this.inThought = false;
    if (!this.announcedCalls.has(call.callId)) {
      this.announcedCalls.add(call.callId);
      this.progress(describeToolCall(call.name, call.arguments ?? {}));
    }
    const update = describeToolCallUpdate(call);
    if (update !== undefined) this.progress(update);
    const output = this.commandOutput.update(call);
    if (output) this.stream.markdown(output);
    this.referenceChangedFile(call);
    if (call.status === 'completed' && WRITE_TOOLS.includes(call.name)) this.changedFiles = true;
  }

  onStatus(status: ChatStatusParams): void {
    // "streaming" is visible by itself. "waiting" comes before every round of a tool turn;
    // after the first, the tool's own progress line already says what is going on.
    if (status.state === 'streaming' || !status.message) return;
    if (status.state === 'waiting') {
      if (this.saidWaiting) return;
      this.saidWaiting = true;
    }
    // Shown as the daemon wrote it: capitalising would mangle a leading model name ("plain cannot use tools").
    this.progress(status.message);
  }

  /** Adds the closing words of a turn: why it stopped early, or what went wrong. */
  finish(outcome: TurnOutcome): void {
    this.endCommandOutput(); // a command cut short by the turn's end
    if (outcome.kind === 'failed') {
      this.explain(explainFailure(outcome.failure));
      return;
    }
    if (outcome.kind === 'cancelled') return; // what was streamed stays; VS Code marks the stop
    switch (outcome.result.stopReason) {
      case 'max_tokens':
        this.note('The answer was cut off: the model reached its length limit.');
        break;
      case 'max_tool_rounds':
        this.note('Stopped after the maximum number of tool rounds. Ask me to continue if the work is not done.');
        break;
      case 'end_turn':
        if (!this.wroteAnswer && this.announcedCalls.size === 0) this.note('The model gave an empty answer.');
        break;
    }
  }

  /** An explanation with its fix buttons; also used before any turn (server missing). */
  explain(explanation: Explanation): void {
    this.stream.markdown(this.separator() + `⚠️ ${explanation.markdown}`);
    for (const action of explanation.actions) {
      this.stream.button({ title: action.title, command: action.command, arguments: action.arguments });
    }
  }

  /** A progress line; a command's output block is closed first, or the line would land inside it. */
  private progress(line: string): void {
    this.endCommandOutput();
    this.stream.progress(line);
  }

  private endCommandOutput(): void {
    const markdown = this.commandOutput.close();
    if (markdown) this.stream.markdown(markdown);
  }

  private note(text: string): void {
    this.stream.markdown(`${this.separator()}*${text}*`);
  }

  /** Starts a new paragraph when the answer already has text, so a note never runs into it. */
  private separator(): string {
    return this.wroteAnswer ? '\n\n' : '';
  }

  private referenceChangedFile(call: ToolCallParams): void {
    const toolPath = changedPath(call);
    const uri = toolPath === undefined ? undefined : this.resolveToolPath(toolPath);
    if (uri === undefined || this.referencedFiles.has(uri.toString())) return;
    this.referencedFiles.add(uri.toString());
    this.stream.reference(uri);
  }
}

