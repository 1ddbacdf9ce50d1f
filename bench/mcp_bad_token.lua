-- mcp_bad_token.lua - wrk script: a flood of initialize requests with bad
-- bearer tokens, as a client with a wrong or guessed token sends them.
--   MCP_BAD_TOKEN  "shaped": each request a fresh token shaped like a real
--                  one (tdd_ and 43 base64url characters), so no cache can
--                  answer it; "garbage": one short token that is no token
--   MCP_FLOOD_DELAY_MS  each connection's pause between requests, which
--                  sets the flood's rate (0: as fast as answers come)
-- done() prints one "flood:" line: requests and how they were answered.
local threads = {}
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local body = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":'
	.. '"2025-11-25","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}}'

function setup(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

function init(args)
	math.randomseed(os.time() * 100 + tid)
	shaped = os.getenv("MCP_BAD_TOKEN") ~= "garbage"
	pause = tonumber(os.getenv("MCP_FLOOD_DELAY_MS") or "0")
	refused_401 = 0
	refused_503 = 0
	other = 0
end

local function shaped_token()
	local chars = {}
	for i = 1, 43 do
		local k = math.random(1, 64)
		chars[i] = string.sub(alphabet, k, k)
	end
	return "tdd_" .. table.concat(chars)
end

function request()
	local headers = {
		["Content-Type"] = "application/json",
		["Accept"] = "application/json, text/event-stream",
		["Authorization"] = "Bearer " .. (shaped and shaped_token() or "wrong-token"),
	}
	return wrk.format("POST", nil, headers, body)
end

function delay()
	return pause
end

function response(status, headers, body)
	if status == 401 then
		refused_401 = refused_401 + 1
	elseif status == 503 then
		refused_503 = refused_503 + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local n401, n503, nother = 0, 0, 0
	for _, t in ipairs(threads) do
		n401 = n401 + t:get("refused_401")
		n503 = n503 + t:get("refused_503")
		nother = nother + t:get("other")
	end
	io.write(string.format("flood: requests=%d seconds=%.3f refused_401=%d refused_503=%d "
			       .. "other=%d\n", summary.requests, summary.duration / 1e6, n401, n503,
			       nother))
end
