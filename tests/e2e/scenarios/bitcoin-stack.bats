#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# The shipped catalog's bitcoin-core, lnd and bitcoin-ui, as archy-generator renders them and
# archy.target starts them at boot: each becomes active only once healthy, lnd and the UI reach
# bitcoind with the generated credentials, and systemd heals a killed bitcoind.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh bitcoin-stack

source /src/tests/e2e/lib/common.sh

# catalog timings: health checks every 30 s, so allow a couple of intervals
START_WAIT=${ARCHY_E2E_START_WAIT:-90}

why() {  # what systemd and podman say about an app, for a failure message
  uctl status --no-pager -n 15 "archy-$1.service" 2>&1 | head -40
  upodman ps -a --filter "name=archy-$1" --format '{{.Names}} {{.Status}}'
}

@test "the generator made units for the three apps and none for masked ones" {
  for id in bitcoin-core lnd bitcoin-ui; do
    [ "$(prop archy-$id.service LoadState)" = loaded ] || fail "archy-$id.service: $(prop archy-$id.service LoadState)"
  done
  [ "$(prop archy-electrumx.service LoadState)" = not-found ] || fail "masked electrumx has a unit"
}

@test "bitcoin-core turns active once healthy" {
  wait_for "$START_WAIT" is_state archy-bitcoin-core.service active || fail "$(why bitcoin-core)"
  [ "$(health archy-bitcoin-core)" = healthy ] || fail "health: $(health archy-bitcoin-core)"
}

@test "lnd turns active: it reached bitcoind with the generated credentials" {
  wait_for "$START_WAIT" is_state archy-lnd.service active || fail "$(why lnd)"
  grep -q SERVER_ACTIVE <<<"$(upodman exec archy-lnd lncli --network=mainnet state)" || fail "not SERVER_ACTIVE"
}

@test "bitcoin-ui proxies RPC to bitcoind: 200 from the host" {
  wait_for "$START_WAIT" is_state archy-bitcoin-ui.service active || fail "$(why bitcoin-ui)"
  code=$(curl -s -o /tmp/body -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"1.0","id":"e2e","method":"getblockchaininfo","params":[]}' http://127.0.0.1:8081/)
  [ "$code" = 200 ] || fail "HTTP $code: $(cat /tmp/body)"
}

@test "archy.target is active once its apps are" {
  wait_for 30 is_state archy.target active || fail "archy.target: $(prop archy.target ActiveState)"
}

@test "a killed bitcoind is restarted by systemd and healthy again" {
  is_state archy-bitcoin-core.service active || skip "bitcoin-core is not running"
  inv=$(prop archy-bitcoin-core.service InvocationID)
  n=$(prop archy-bitcoin-core.service NRestarts)
  upodman kill archy-bitcoin-core >/dev/null
  wait_for 60 restarts_at_least archy-bitcoin-core.service $((n + 1)) || fail "no restart: $(why bitcoin-core)"
  wait_for "$START_WAIT" is_state archy-bitcoin-core.service active || fail "$(why bitcoin-core)"
  [ "$(prop archy-bitcoin-core.service InvocationID)" != "$inv" ] || fail "same InvocationID"
  [ "$(health archy-bitcoin-core)" = healthy ] || fail "health: $(health archy-bitcoin-core)"
}

@test "bitcoin-ui still proxies after bitcoind was recreated" {
  is_state archy-bitcoin-ui.service active || skip "bitcoin-ui is not running"
  ui_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"method":"uptime"}' http://127.0.0.1:8081/)" = 200 ]; }
  wait_for 30 ui_ok || fail "the UI no longer reaches bitcoind (an upstream address resolved once, at startup?)"
}
