"""One MCP session through the official Python SDK, driven by a script of steps.

Runs in the SDK's virtualenv (tests/harness/mcp_sdk.py), not under pytest:
    session.py http URL TOKEN  < steps.json
    session.py stdio TODOD CONFIG USER  < steps.json

The steps are a JSON list; each is one of
    {"list_tools": true}                   every page, following nextCursor
    {"call": NAME, "args": {...}, "save": "x"}
    {"ping": true}
A string argument of the exact form "${x.a.b}" is replaced by that part of
the result saved as "x" (e.g. "${t.structuredContent.id}"), so one session
can create a task and then act on its id.

Prints one JSON document: what initialize negotiated, the session id, and
each step's outcome.  A tool's business error is an outcome (isError); a
JSON-RPC error is reported as {"error": {"code", "message"}}; anything the
SDK itself refused (a result that does not match the tool's outputSchema,
for one) as {"sdk_error": "..."}.
"""

import asyncio
import json
import os
import sys

import httpx
from mcp import ClientSession, McpError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def resolve(value, saved):
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        name, *path = value[2:-1].split(".")
        node = saved[name]
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node
    if isinstance(value, dict):
        return {k: resolve(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, saved) for v in value]
    return value


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def list_all_tools(session):
    tools, pages, cursor = [], 0, None
    while True:
        page = await session.list_tools(cursor) if cursor else await session.list_tools()
        pages += 1
        tools.extend(dump(t) for t in page.tools)
        cursor = page.nextCursor
        if not cursor or pages > 100:
            return {"pages": pages, "tools": tools}


async def run_step(session, step, saved):
    try:
        args = resolve(step.get("args", {}), saved)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return {"ref_error": f"{step.get('args')}: {exc!r} is not in the results saved: {saved}"}
    try:
        if step.get("list_tools"):
            return await list_all_tools(session)
        if step.get("ping"):
            return {"result": dump(await session.send_ping())}
        result = await session.call_tool(step["call"], args)
        out = dump(result)
        out.setdefault("isError", False)
        return out
    except McpError as exc:
        return {"error": {"code": exc.error.code, "message": exc.error.message}}
    except RuntimeError as exc:
        return {"sdk_error": str(exc)}


async def run(session, steps, get_session_id):
    init = await session.initialize()
    report = {
        "protocol_version": init.protocolVersion,
        "server_info": dump(init.serverInfo),
        "capabilities": dump(init.capabilities),
        "instructions": init.instructions,
        "session_id": get_session_id() if get_session_id else None,
        "steps": [],
    }
    saved = {}
    for step in steps:
        outcome = await run_step(session, step, saved)
        if "save" in step:
            saved[step["save"]] = outcome
        report["steps"].append(outcome)
    return report


async def over_http(url, token, steps):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=60)) as http, \
            streamable_http_client(url, http_client=http) as (read, write, get_session_id), \
            ClientSession(read, write) as session:
        return await run(session, steps, get_session_id)


async def over_stdio(todod, config, user, steps):
    params = StdioServerParameters(command=todod, args=["mcp-stdio", "--user", user, "-c", config],
                                   env=dict(os.environ))
    # todod's log goes to its stderr: keep it apart from our JSON on stdout.
    async with stdio_client(params, errlog=sys.stderr) as (read, write), \
            ClientSession(read, write) as session:
        return await run(session, steps, None)


def main():
    steps = json.load(sys.stdin)
    mode, *args = sys.argv[1:]
    if mode == "http":
        report = asyncio.run(over_http(args[0], args[1] if len(args) > 1 else "", steps))
    elif mode == "stdio":
        report = asyncio.run(over_stdio(*args, steps))
    else:
        sys.exit(f"unknown mode {mode!r}")
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
