-- mcp_call.lua - wrk script: every request is one JSON-RPC request in an
-- existing MCP session (POST /mcp).  Set up by bench/mcp.py through the
-- environment:
--   MCP_TOKEN     the bearer token
--   MCP_SESSIONS  session ids, comma-separated; thread N uses the Nth
--   MCP_METHOD    e.g. "ping" or "tools/call"
--   MCP_PARAMS    the params object as JSON text ("{}" when unset)
-- A reply that is not HTTP 200, or that carries a JSON-RPC error or a
-- tool result with isError, counts as a failure: wrk alone would see only
-- the HTTP status.  done() prints one "mcp:" line that bench/mcp.py reads.
local threads = {}

function setup(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

function init(args)
	local sessions = {}
	for s in string.gmatch(os.getenv("MCP_SESSIONS"), "[^,]+") do
		table.insert(sessions, s)
	end
	method = os.getenv("MCP_METHOD")
	params = os.getenv("MCP_PARAMS") or "{}"
	counter = 0
	failures = 0
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["Accept"] = "application/json, text/event-stream"
	wrk.headers["Authorization"] = "Bearer " .. os.getenv("MCP_TOKEN")
	wrk.headers["MCP-Session-Id"] = sessions[(tid % #sessions) + 1]
	wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
end

function request()
	counter = counter + 1
	local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"%s","params":%s}',
				   counter, method, params)
	return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
	if status ~= 200 or string.find(body, '"isError":true', 1, true)
	   or string.find(body, '"error":{', 1, true) then
		failures = failures + 1
	end
end

function done(summary, latency, requests)
	local failed = 0
	for _, t in ipairs(threads) do
		failed = failed + t:get("failures")
	end
	io.write(string.format("mcp: requests=%d seconds=%.3f failures=%d errors=%d "
			       .. "p50=%.3f p95=%.3f p99=%.3f\n",
			       summary.requests, summary.duration / 1e6, failed,
			       summary.errors.connect + summary.errors.read + summary.errors.write
			       + summary.errors.status + summary.errors.timeout,
			       latency:percentile(50) / 1000, latency:percentile(95) / 1000,
			       latency:percentile(99) / 1000))
end
