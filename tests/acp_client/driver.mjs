// The official ACP TypeScript SDK as the client of an agent, driven by a test.
//
//   node driver.mjs -- AGENT_COMMAND [ARGS...]
//
// Spawns the agent and connects to it with the SDK's `client()`. Reads commands
// from stdin, one JSON object a line, and writes events to stdout, one a line:
//   {"op":"request","id":N,"method":M,"params":P}  -> {"event":"response","id":N,"result":R}
//                                                    or {"event":"error","id":N,"error":{code,message,data}}
//   {"op":"notify","method":M,"params":P}            (e.g. session/cancel)
//   {"op":"buffers","files":{ABSPATH:TEXT}}          unsaved text fs/read_text_file answers with
//   {"op":"permissions","answer":A}                  how to answer session/request_permission:
//                                                    an optionId, "cancelled", or "hold" (then wait for
//   {"op":"answer_permission","key":K,"answer":A})   the test to answer the request announced as K)
//   {"op":"close"}                                   close the connection and the agent's stdin
// Every message the agent sends is reported as {"event":"agent","message":MSG} before the
// SDK handles it; fs/write_text_file writes to disk and is also reported as {"event":"write",...}.

import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { Readable, Writable } from "node:stream";
import { client, methods, ndJsonStream, RequestError } from "@agentclientprotocol/sdk";

const separator = process.argv.indexOf("--");
const [command, ...args] = process.argv.slice(separator + 1);
const agent = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const buffers = new Map();
let permissionAnswer = "allow";
const heldPermissions = new Map();
let nextKey = 1;

function permissionOutcome(answer) {
  return answer === "cancelled"
    ? { outcome: { outcome: "cancelled" } }
    : { outcome: { outcome: "selected", optionId: answer } };
}

const app = client({ name: "ollama-chatd-tests" })
  .onNotification(methods.client.session.update, () => {})
  .onRequest(methods.client.session.requestPermission, ({ params }) => {
    if (permissionAnswer !== "hold") return permissionOutcome(permissionAnswer);
    const key = nextKey++;
    emit({ event: "permission_held", key, params });
    return new Promise((resolve) => heldPermissions.set(key, resolve));
  })
  .onRequest(methods.client.fs.readTextFile, async ({ params }) => {
    if (buffers.has(params.path)) return { content: buffers.get(params.path) };
    try {
      return { content: await readFile(params.path, "utf8") };
    } catch {
      throw RequestError.resourceNotFound(params.path);
    }
  })
  .onRequest(methods.client.fs.writeTextFile, async ({ params }) => {
    await writeFile(params.path, params.content, "utf8");
    buffers.delete(params.path);
    emit({ event: "write", path: params.path, content: params.content });
    return {};
  });

// Report what the agent sends, as sent, before the SDK parses it.
const fromAgent = Readable.toWeb(agent.stdout);
const stream = ndJsonStream(Writable.toWeb(agent.stdin), fromAgent);
const tapped = stream.readable.pipeThrough(
  new TransformStream({
    transform(message, controller) {
      emit({ event: "agent", message });
      controller.enqueue(message);
    },
  }),
);

const finished = app.connectWith({ writable: stream.writable, readable: tapped }, async (ctx) => {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    if (command.op === "close") break;
    handle(ctx, command);
  }
});

function handle(ctx, command) {
  switch (command.op) {
    case "request":
      ctx.request(command.method, command.params).then(
        (result) => emit({ event: "response", id: command.id, result }),
        (error) => emit({ event: "error", id: command.id, error: { code: error.code, message: error.message, data: error.data } }),
      );
      break;
    case "notify":
      ctx.notify(command.method, command.params);
      break;
    case "buffers":
      for (const [path, text] of Object.entries(command.files)) buffers.set(path, text);
      break;
    case "permissions":
      permissionAnswer = command.answer;
      break;
    case "answer_permission":
      heldPermissions.get(command.key)(permissionOutcome(command.answer));
      heldPermissions.delete(command.key);
      break;
    default:
      emit({ event: "driver_error", message: `unknown op ${command.op}` });
  }
}

finished.then(
  () => {
    agent.stdin.end();
    agent.on("exit", (code) => {
      emit({ event: "agent_exit", code });
      process.exit(0);
    });
  },
  (error) => {
    emit({ event: "driver_error", message: String(error) });
    process.exit(1);
  },
);
