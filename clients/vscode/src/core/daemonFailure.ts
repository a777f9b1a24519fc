/**
 * Turns whatever a request rejected with (a JSON-RPC ResponseError from the daemon, a
 * closed connection, a plain Error) into one plain object the rest of the extension can
 * switch on. Only `message` texts are kept: a stack trace is never shown to the user.
 */
import { ConnectionError } from 'vscode-jsonrpc/node';
import { ErrorCodes } from './protocol';

export interface DaemonFailure {
  /** JSON-RPC error code, or undefined when the error did not come from the daemon. */
  code?: number;
  /** The daemon's stable `data.kind`, or one derived from the code. */
  kind: string;
  /** The daemon's message (already written for a person), or the Error's message. */
  message: string;
  /** The error's `data`, for the details of each kind (`address`, `model`, `partial`...). */
  data: Record<string, unknown>;
}

const KIND_BY_CODE: Record<number, string> = {
  [ErrorCodes.ollamaUnreachable]: 'ollama_unreachable',
  [ErrorCodes.modelNotFound]: 'model_not_found',
  [ErrorCodes.upstreamError]: 'upstream_error',
  [ErrorCodes.chatBusy]: 'chat_busy',
  [ErrorCodes.methodNotFound]: 'method_not_found',
  [ErrorCodes.invalidParams]: 'invalid_params',
  [ErrorCodes.internalError]: 'internal_error',
  [ErrorCodes.requestCancelled]: 'cancelled',
  [ErrorCodes.pendingResponseRejected]: 'server_not_running',
  [ErrorCodes.connectionInactive]: 'server_not_running',
};

export function toDaemonFailure(error: unknown): DaemonFailure {
  // A ConnectionError also has a numeric `code` (1, 2, 3), so it is recognised first.
  if (isConnectionError(error)) {
    return { kind: 'server_not_running', message: (error as Error).message, data: {} };
  }
  if (isResponseErrorLike(error)) {
    const data = isRecord(error.data) ? error.data : {};
    const kind = typeof data.kind === 'string' ? data.kind : (KIND_BY_CODE[error.code] ?? 'unknown');
    return { code: error.code, kind, message: error.message, data };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'client_error', message, data: {} };
}

export function isCancellation(failure: DaemonFailure): boolean {
  return failure.code === ErrorCodes.requestCancelled;
}

export function isMethodNotFound(failure: DaemonFailure): boolean {
  return failure.code === ErrorCodes.methodNotFound;
}

function isResponseErrorLike(error: unknown): error is { code: number; message: string; data?: unknown } {
  return (
    isRecord(error) &&
    typeof error.code === 'number' &&
    typeof error.message === 'string'
  );
}

function isConnectionError(error: unknown): boolean {
  return (
    error instanceof ConnectionError ||
    (error instanceof Error && /^Connection is (closed|disposed)/.test(error.message))
  );
}

function isRecord(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
