-- The authorization server alone under wrk (Debian's wrk, LuaJIT): authorize + token pairs a
-- second, with a load generator in C that costs far less CPU per request than the bench's
-- reqwest client, which shares the same cores (docs/performance.md).
--
--   bash scripts/wrk-pairs.sh [BIN_DIR] [SECONDS]   (starts the server, runs this, checks it)
--
-- Each connection asks `GET /authorize` (PKCE S256) while no code waits, else redeems a waiting
-- code with `POST /token` (client_secret_basic). Codes are shared by the thread's connections:
-- any of them may redeem any code, as all were issued to the same client, redirect URI and PKCE
-- pair. A code is taken from the `Location` of a 302 that carries our `state`; a token counts only
-- from a 200 whose body has an `access_token`. Anything else is counted as an error; `done`
-- then prints `FAILED` and the first one, and wrk-pairs.sh exits with 1.

local verifier = "wrk-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
local challenge = "LA4pTrDgPDr7GurrEERxq-syau33bEJN9pSXqmYdIS4" -- BASE64URL(SHA-256(verifier))
local redirect_uri = "http%3A%2F%2Flocalhost%3A8080%2Fcallback"
local state = "wrk-state"

local authorize = wrk.format("GET", "/authorize?response_type=code&client_id=1234"
  .. "&redirect_uri=" .. redirect_uri
  .. "&scope=epoch_time&state=" .. state
  .. "&code_challenge=" .. challenge .. "&code_challenge_method=S256"
  .. "&resource=http%3A%2F%2Flocalhost%3A8082%2Fepoch_time&login_hint=alice")
local token_headers = {
  ["Authorization"] = "Basic MTIzNDpxd2VydHk=", -- 1234:qwerty
  ["Content-Type"] = "application/x-www-form-urlencoded",
}

local codes = {}
codes_issued, tokens, errors = 0, 0, 0
first_error = nil

local function failed(what)
  errors = errors + 1
  if first_error == nil then first_error = what end
end

request = function()
  local code = table.remove(codes)
  if code == nil then
    return authorize
  end
  return wrk.format("POST", "/token", token_headers,
    "grant_type=authorization_code&code=" .. code
    .. "&redirect_uri=" .. redirect_uri .. "&code_verifier=" .. verifier)
end

response = function(status, headers, body)
  if status == 302 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code and location:find("state=" .. state .. "&", 1, true) then
      codes_issued = codes_issued + 1
      table.insert(codes, code)
    else
      failed("302 without a code: " .. location)
    end
  elseif status == 200 and body:find('"access_token":"', 1, true) then
    tokens = tokens + 1
  else
    failed(status .. ": " .. body:sub(1, 160))
  end
end

local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local issued, redeemed, bad, first = 0, 0, 0, nil
  for _, thread in ipairs(threads) do
    issued = issued + thread:get("codes_issued")
    redeemed = redeemed + thread:get("tokens")
    bad = bad + thread:get("errors")
    first = first or thread:get("first_error")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("codes issued %d, tokens %d, errors %d (socket errors: connect %d, read %d, write %d, timeout %d)\n",
    issued, redeemed, bad, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
  io.write(string.format("authorize + token pairs/s: %.0f\n", redeemed / seconds))
  if bad > 0 or summary.errors.status > 0 then
    io.write("FAILED: " .. tostring(first) .. "\n")
  end
end
