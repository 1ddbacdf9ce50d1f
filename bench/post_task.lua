-- post_task.lua - wrk script: every request creates one task through the
-- probe plugin (POST /probe/tasks).  wrk counts non-201 answers itself
-- ("Non-2xx or 3xx responses").
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
	counter = counter + 1
	local body = string.format('{"title":"bench %d","priority":"medium"}', counter)
	return wrk.format(nil, "/probe/tasks", nil, body)
end
