/** A ChatResponseStream that writes down what the chat view would show. */
export type ChatPart =
  | { kind: 'markdown'; value: string }
  | { kind: 'progress'; value: string }
  | { kind: 'reference'; value: string }
  | { kind: 'button'; value: string; command: string; arguments?: unknown[] };

export class ChatStreamRecorder {
  readonly parts: ChatPart[] = [];

  markdown(value: string | { value: string }): void {
    this.parts.push({ kind: 'markdown', value: typeof value === 'string' ? value : value.value });
  }
  progress(value: string): void {
    this.parts.push({ kind: 'progress', value });
  }
  reference(value: { toString(): string; fsPath?: string }): void {
    this.parts.push({ kind: 'reference', value: value.fsPath ?? value.toString() });
  }
  button(command: { title: string; command: string; arguments?: unknown[] }): void {
    this.parts.push({ kind: 'button', value: command.title, command: command.command, arguments: command.arguments });
  }
  anchor(): void {}
  filetree(): void {}
  push(): void {}

  /** All markdown, as the answer reads. */
  get answer(): string {
    return this.parts.filter((p) => p.kind === 'markdown').map((p) => p.value).join('');
  }
  of(kind: ChatPart['kind']): string[] {
    return this.parts.filter((p) => p.kind === kind).map((p) => p.value);
  }
  buttons(): Extract<ChatPart, { kind: 'button' }>[] {
    return this.parts.filter((p): p is Extract<ChatPart, { kind: 'button' }> => p.kind === 'button');
  }
}
