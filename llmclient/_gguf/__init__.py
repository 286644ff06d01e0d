"""Reading GGUF headers, and nothing else: never the weights, never the network.

parse.py    a header's key/values and tensor table from a file's first bytes (says how many more it needs)
info.py     `GgufInfo`: a header in the planner's terms (public as `llmclient.metadata`)
local.py    a local file's header, mapped or read in pieces
ranged.py   a header read in growing pieces from any source (the hub's Range requests: `llmclient._hub`)
"""
