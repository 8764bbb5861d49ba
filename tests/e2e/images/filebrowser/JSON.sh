#!/bin/sh
# The stand-in image's /JSON.sh. Upstream's image carries dominictarr/JSON.sh (0d5e5c7), which
# prints a `[path]<TAB>value` line per JSON value read on stdin; /healthcheck.sh greps the
# `["port"]` and `["address"]` lines of settings.json. This test-bed version prints those
# lines for the members of a top-level object (values as JSON text: strings keep their quotes),
# which is all the health check reads; nested values are skipped.
tr -d '\n\r' | awk '
{
  s = $0; n = length(s); i = 1; depth = 0; key = ""; want_key = 0
  while (i <= n) {
    c = substr(s, i, 1)
    if (c == "{" || c == "[") { depth++; if (depth == 1) want_key = 1; i++; continue }
    if (c == "}" || c == "]") { depth--; i++; continue }
    if (c == ",") { if (depth == 1) want_key = 1; i++; continue }
    if (c == "\"") {
      j = i + 1
      while (j <= n) { d = substr(s, j, 1); if (d == "\\") { j += 2; continue } if (d == "\"") break; j++ }
      tok = substr(s, i, j - i + 1); i = j + 1
      if (depth == 1 && want_key) { key = tok; want_key = 0 } else if (depth == 1) printf "[%s]\t%s\n", key, tok
      continue
    }
    if (depth == 1 && !want_key && c ~ /[-0-9tfn]/) {
      j = i
      while (j <= n && substr(s, j, 1) ~ /[-+.0-9eEtrufalsn]/) j++
      printf "[%s]\t%s\n", key, substr(s, i, j - i); i = j
      continue
    }
    i++
  }
}'
