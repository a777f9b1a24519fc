/** The repository's fake Ollama server (tests/fake_ollama.py), run as a process. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FAKE_OLLAMA_SCRIPT, PYTHON } from './paths';
import { collectStderr, spawnTracked, waitForExit } from './processes';

export type FakeReply = Record<string, unknown> & { kind: string };

export interface RecordedRequest {
  method: string;
  path: string;
  body: any;
  closed_at: number | null;
  client_dropped: boolean;
  response_completed: boolean;
}

export class FakeOllama {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeOllama> {
    const child = spawnTracked(PYTHON, [FAKE_OLLAMA_SCRIPT, '--port', '0'], {});
    const stderr = collectStderr(child);
    const lines = createInterface({ input: child.stdout! });
    const firstLine = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`fake Ollama exited (${code}) before printing its address:\n${stderr()}`)));
    });
    lines.close();
    child.stdout!.resume(); // keep draining, it prints nothing more
    return new FakeOllama(child, JSON.parse(firstLine).url);
  }

  /** Queues replies for the next /api/chat requests (for any model unless `model` is given). */
  async script(replies: FakeReply[], model: string | null = null): Promise<void> {
    await this.post('/_fake/script', { model, replies });
  }

  async reset(): Promise<void> {
    await this.post('/_fake/reset', {});
  }

  /** The recorded /api/chat requests. */
  async chatRequests(): Promise<RecordedRequest[]> {
    const response = await fetch(`${this.url}/_fake/requests`);
    const records = (await response.json()) as RecordedRequest[];
    return records.filter((r) => r.path === '/api/chat');
  }

  async stop(): Promise<void> {
    this.child.stdin?.end(); // the fake stops at stdin EOF
    await waitForExit(this.child, 3000);
  }

  private async post(path: string, body: unknown): Promise<void> {
    const response = await fetch(`${this.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    if (!response.ok) throw new Error(`fake Ollama ${path}: HTTP ${response.status} ${await response.text()}`);
  }
}
