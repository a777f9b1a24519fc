"""`model/chat` in wire terms: the client's messages to the engine's, the result back."""

from __future__ import annotations

from ollama_chatd import llm
from ollama_chatd.engine.model_call import CallRequest, CallResult
from ollama_chatd.rpc import model_messages as wire
from ollama_chatd.rpc.messages import HistoryToolCall


def call_request(params: wire.ModelChatParams) -> CallRequest:
    return CallRequest(
        request_id=params.request_id,
        model=params.model,
        messages=tuple(_message(m) for m in params.messages),
        tools=tuple(llm.ToolSpec(t.name, t.description, t.parameters) for t in params.tools or ()),
        think=params.think,
        options=params.options,
    )


def call_result(result: CallResult) -> wire.ModelChatResult:
    reply = result.message
    return wire.ModelChatResult(
        request_id=result.request_id,
        stop_reason=result.stop_reason,
        message=wire.CallReply(
            role="assistant",
            content=reply.content,
            thinking=reply.thinking,
            tool_calls=[HistoryToolCall(name=c.name, arguments=c.arguments, id=c.id) for c in reply.tool_calls] or None,
        ),
        usage=wire.CallUsage(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            total_duration_ms=result.usage.total_duration_ns / 1e6,
        ),
    )


def _message(message: wire.CallMessage) -> llm.Message:
    return llm.Message(
        role=message.role,
        content=message.content,
        thinking=message.thinking,
        images=tuple(message.images or ()),
        tool_calls=tuple(llm.ToolCall(c.name, c.arguments, c.id) for c in message.tool_calls or ()),
        tool_name=message.tool_name,
        tool_call_id=message.tool_call_id,
    )
