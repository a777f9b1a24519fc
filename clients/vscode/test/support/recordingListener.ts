/** A TurnListener that remembers everything, for assertions. */
import type { TurnListener } from '../../src/core/chatClient';
import type { ChatStatusParams, ToolCallParams } from '../../src/core/protocol';

export class RecordingListener implements TurnListener {
  readonly content: string[] = [];
  readonly thinking: string[] = [];
  readonly toolCalls: ToolCallParams[] = [];
  readonly statuses: ChatStatusParams[] = [];
  /** Called after each content token (to act mid-stream, e.g. press Stop). */
  onContent?: (text: string) => void;

  onToken(kind: string, text: string): void {
    if (kind === 'content') {
      this.content.push(text);
      this.onContent?.(text);
    } else if (kind === 'thinking') {
      this.thinking.push(text);
    }
  }

  onToolCall(call: ToolCallParams): void {
    this.toolCalls.push(call);
  }

  onStatus(status: ChatStatusParams): void {
    this.statuses.push(status);
  }

  get text(): string {
    return this.content.join('');
  }

  statusesOf(callId: string): string[] {
    return this.toolCalls.filter((c) => c.callId === callId).map((c) => c.status);
  }
}
