"""Helpers for the end-to-end reminder tests: a minimal MCP client over raw
Streamable HTTP (fast enough to set a reminder two seconds ahead, which a
freshly spawned SDK process is not), and the SMTP server's receive times.

    mcp = McpHttp(todod, token)          # initialize + notifications/initialized
    task = mcp.call("add_task", title="x", remind_at="...")["task"]
    for msg, at in received_with_times(smtp): ...
"""

import json
import os

ACCEPT = "application/json, text/event-stream"
PROTOCOL = "2025-11-25"
SENDER = "todod@example.org"
RECIPIENT = "alice@example.com"


def reminder_plugins(smtp_url):
    """The plugins of a reminder that ends as mail: MCP in, reminders,
    email out, recurrence.  The hourly safety scan must not be what fires
    a reminder in these tests: a timer or a Dapr job is."""
    return {
        "mcp-tools": {"auth": "token"},
        "reminders": {"scan_interval": "1h"},
        "email": {"server": smtp_url, "from": f"Todo Bot <{SENDER}>", "timeout": "5s"},
        "recurrence": {},
    }


class McpError(AssertionError):
    """A JSON-RPC error or a tool result with isError."""


def messages(resp):
    """The JSON-RPC messages in a response, JSON or SSE."""
    ctype = resp.headers.get("Content-Type", "")
    if ctype.startswith("text/event-stream"):
        out = []
        for event in resp.text.split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in event.splitlines()
                             if line.startswith("data:"))
            if data:
                out.append(json.loads(data))
        return out
    assert ctype.startswith("application/json"), resp.headers
    return [resp.json()]


class McpHttp:
    def __init__(self, todod, token):
        self.todod = todod
        self.token = token
        self.session = None
        self.next_id = 1
        init = self._post(self._request("initialize", {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "e2e-test", "version": "0"}}))
        self.session = init.headers.get("Mcp-Session-Id") or init.headers.get("MCP-Session-Id")
        assert init.status == 200 and self.session, init
        note = self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert note.status == 202, note

    def _request(self, method, params):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.next_id += 1
        return msg

    def _post(self, msg):
        headers = {"Accept": ACCEPT, "Content-Type": "application/json",
                   "Authorization": f"Bearer {self.token}"}
        if self.session:
            headers["MCP-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = PROTOCOL
        return self.todod.request("POST", "/mcp", body=json.dumps(msg).encode(), headers=headers)

    def call(self, tool, **args):
        """The structured result of a successful tools/call."""
        resp = self._post(self._request("tools/call", {"name": tool, "arguments": args}))
        [answer] = [m for m in messages(resp) if "id" in m]
        if "error" in answer:
            raise McpError(f"{tool}: JSON-RPC error {answer['error']}")
        result = answer["result"]
        if result.get("isError"):
            raise McpError(f"{tool}: {result.get('structuredContent') or result['content']}")
        return result["structuredContent"]


def received_with_times(smtp):
    """[(Received, epoch seconds when the server stored it)] in arrival order."""
    times = []
    names = sorted((n for n in os.listdir(smtp.spool) if n.endswith(".json")),
                   key=lambda n: int(n.split(".")[0]))
    for name in names:
        with open(os.path.join(smtp.spool, name)) as f:
            times.append(json.load(f)["received"])
    messages = smtp.messages()
    assert len(messages) >= len(times)
    return list(zip(messages, times))
