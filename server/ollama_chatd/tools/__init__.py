"""The tools the model may call on the editor's workspace.

No JSON-RPC here. The tools themselves are synchronous functions: `workspace`
confines every path and reads files safely, `walk` lists the tree as git would
(`.gitignore`), `globs` matches `**/*.py`-style patterns, `edits` describes and
applies changes, `builtin` holds the tools that read, `change_tools` those that
change files, and `registry` their names, descriptions and argument schemas. `runner` is the engine's asynchronous side of
them: it runs each call in a worker thread and asks before any change. `commands` is
`run_command` (asked for each time: `command_policy`; its processes: `command_process`
and `command_supervisor`, which ends them all; its output, bounded: `command_output`).
"""
