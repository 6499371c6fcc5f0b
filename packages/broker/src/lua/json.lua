-- json_string(s): s as a JSON string, byte for byte what JSON.stringify writes, for frames built
-- in Lua (cjson.encode writes '/' as '\/' and DEL as \u007f, and orders a table's keys at random).
local JSON_ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\t'] = '\\t', ['\n'] = '\\n', ['\f'] = '\\f', ['\r'] = '\\r'}
local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    if c == '\127' then return c end
    return JSON_ESCAPES[c] or string.format('\\u%04x', string.byte(c))
  end) .. '"'
end
