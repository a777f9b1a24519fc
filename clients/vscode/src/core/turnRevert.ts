/**
 * "Revert this turn": which daemon turn an answer's button means, and how the result reads.
 *
 * A button outlives the state it was made in: the user may revert an earlier turn first,
 * which shifts the indexes of the later ones. So the button carries the turn's prompt too,
 * and the turn is looked up again in the chat's history when the button is pressed.
 */
import type { ChatHistoryResult, ChatRevertResult } from './protocol';

/** What a "Revert this turn" button carries. */
export interface RevertTarget {
  chatId: string;
  /** The turn's index when its answer ended. */
  turn: number;
  /** The prompt the turn sent, to find it again. */
  prompt: string;
}

/** The prompts of the chat's turns, in order (a turn's index is its prompt's index). */
export function turnPrompts(history: ChatHistoryResult): string[] {
  return history.messages.filter((m) => m.role === 'user').map((m) => m.content);
}

/** The turn `target` means now: its index if the prompt still matches, else the last turn
 * with that prompt before it; undefined when the turn is gone (reverted already). */
export function findTurn(prompts: readonly string[], target: RevertTarget): number | undefined {
  for (let turn = Math.min(target.turn, prompts.length - 1); turn >= 0; turn--) {
    if (prompts[turn] === target.prompt) return turn;
  }
  return undefined;
}

export function isRevertTarget(value: unknown): value is RevertTarget {
  const target = value as Partial<RevertTarget> | undefined;
  return typeof target?.chatId === 'string' && Number.isInteger(target.turn) && typeof target.prompt === 'string';
}

/** The question before reverting `turn` of a chat with `turns` turns. */
export function confirmation(turn: number, turns: number): { message: string; detail: string } {
  const later = turns - turn - 1;
  return {
    message: later === 0 ? 'Revert this turn?' : `Revert this turn and the ${later === 1 ? 'turn' : `${later} turns`} after it?`,
    detail:
      'The files the model changed go back to how they were before it: files it created are deleted, files it deleted come back. ' +
      'Files changed since the model edited them are left as they are. Commands it ran are not undone. The model forgets these turns.',
  };
}

/** How a revert ended, as one notification: a warning when something was left alone. */
export function revertSummary(result: ChatRevertResult): { severity: 'information' | 'warning'; message: string; detail: string } {
  const lines = [
    ...result.restored.map((path) => `Restored ${path}`),
    ...result.skipped.map((file) => `Left ${file.path}: ${file.reason}`),
    ...(result.commandsNotUndone.length > 0
      ? ['Not undone (what these commands did stays):', ...result.commandsNotUndone.map((command) => `  ${command}`)]
      : []),
  ];
  const restored = result.restored.length === 1 ? '1 file restored' : `${result.restored.length} files restored`;
  const skipped = result.skipped.length === 0 ? '' : `, ${result.skipped.length} left as they are`;
  const commands = result.commandsNotUndone.length === 0 ? '' : '; the commands it ran are not undone';
  const warn = result.skipped.length > 0 || result.commandsNotUndone.length > 0;
  return { severity: warn ? 'warning' : 'information', message: `Turn reverted: ${restored}${skipped}${commands}.`, detail: lines.join('\n') };
}
