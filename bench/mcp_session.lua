-- mcp_session.lua - wrk script: each connection loops over whole MCP
-- sessions, as published MCP server benchmarks do: initialize,
-- notifications/initialized, one tools/call (MCP_TOOL with MCP_ARGS),
-- DELETE.  Needs one connection per thread (wrk -tN -cN): the next request
-- depends on the last reply, and wrk tells a thread's connections apart
-- only by order.  Environment: MCP_TOKEN, MCP_TOOL, MCP_ARGS.
-- done() prints one "mcp:" line (sessions completed, failures) for
-- bench/mcp.py.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

local function header(headers, name)
	for k, v in pairs(headers) do
		if string.lower(k) == name then
			return v
		end
	end
	return nil
end

function init(args)
	step = 1
	sessions = 0
	failures = 0
	counter = 0
	session = nil
	tool = os.getenv("MCP_TOOL")
	tool_args = os.getenv("MCP_ARGS") or "{}"
	token = os.getenv("MCP_TOKEN")
end

function request()
	counter = counter + 1
	-- wrk.format() takes these instead of wrk.headers, not on top of them.
	local headers = {
		["Content-Type"] = "application/json",
		["Accept"] = "application/json, text/event-stream",
		["Authorization"] = "Bearer " .. token,
	}
	if step > 1 then
		headers["MCP-Session-Id"] = session
		headers["MCP-Protocol-Version"] = "2025-11-25"
	end
	if step == 1 then
		return wrk.format("POST", nil, headers, string.format(
			'{"jsonrpc":"2.0","id":%d,"method":"initialize","params":{"protocolVersion":'
			.. '"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}',
			counter))
	elseif step == 2 then
		return wrk.format("POST", nil, headers,
				  '{"jsonrpc":"2.0","method":"notifications/initialized"}')
	elseif step == 3 then
		return wrk.format("POST", nil, headers, string.format(
			'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s",'
			.. '"arguments":%s}}', counter, tool, tool_args))
	end
	return wrk.format("DELETE", nil, headers, nil)
end

-- Any surprise starts a new session: a failure, not a wedged connection.
function response(status, headers, body)
	local good
	if step == 1 then
		session = header(headers, "mcp-session-id")
		good = status == 200 and session ~= nil
	elseif step == 2 then
		good = status == 202
	elseif step == 3 then
		good = status == 200 and not string.find(body, '"isError":true', 1, true)
		       and not string.find(body, '"error":{', 1, true)
	else
		good = status == 200 or status == 204
		if good then
			sessions = sessions + 1
		end
	end
	if not good then
		failures = failures + 1
		step = 1
	else
		step = step % 4 + 1
	end
end

function done(summary, latency, requests)
	local total, failed = 0, 0
	for _, t in ipairs(threads) do
		total = total + t:get("sessions")
		failed = failed + t:get("failures")
	end
	io.write(string.format("mcp: requests=%d seconds=%.3f sessions=%d failures=%d errors=%d "
			       .. "p50=%.3f p95=%.3f p99=%.3f\n",
			       summary.requests, summary.duration / 1e6, total, failed,
			       summary.errors.connect + summary.errors.read + summary.errors.write
			       + summary.errors.status + summary.errors.timeout,
			       latency:percentile(50) / 1000, latency:percentile(95) / 1000,
			       latency:percentile(99) / 1000))
end
