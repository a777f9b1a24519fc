/**
 * Answers the daemon's `chat/requestPermission` by delegating to an injected prompt, so the
 * core decides the protocol (what to answer, what a failure means) and the editor decides
 * how to ask.
 */
import type { CancellationToken, Disposable } from 'vscode-jsonrpc/node';
import { Methods, type PermissionDecision, type PermissionRequestParams, type PermissionResult } from './protocol';
import type { RpcConnection } from './rpcConnection';

/**
 * Asks the user. `token` is cancelled when the daemon withdraws the question (the turn
 * was stopped); the answer is then ignored by the daemon.
 */
export type PermissionPrompt = (request: PermissionRequestParams, token: CancellationToken) => Promise<PermissionDecision>;

const DECISIONS: readonly string[] = ['allow', 'allow_always', 'deny'];

export function registerPermissionHandler(connection: RpcConnection, prompt: PermissionPrompt): Disposable {
  return connection.onRequest(Methods.requestPermission, async (params: PermissionRequestParams, token: CancellationToken) => {
    return { decision: await decide(prompt, params, token) } satisfies PermissionResult;
  });
}

/** Anything but a clear yes is a no: a prompt that fails or answers nonsense denies. */
async function decide(prompt: PermissionPrompt, params: PermissionRequestParams, token: CancellationToken): Promise<PermissionDecision> {
  try {
    const decision = await prompt(params, token);
    return DECISIONS.includes(decision) ? decision : 'deny';
  } catch {
    return 'deny';
  }
}
