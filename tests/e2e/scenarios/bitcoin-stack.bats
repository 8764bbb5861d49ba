#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# The shipped catalog's bitcoin-core, lnd and bitcoin-ui, as archy-generator renders them and
# archy.target starts them at boot: each becomes active only once healthy (the unit's
# ActiveEnterTimestamp against podman's health log), lnd and the UI start only once bitcoind is
# active, they reach bitcoind with the generated credentials, and systemd heals a killed bitcoind
# with nobody's help while lnd stays up.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh bitcoin-stack

source /src/tests/e2e/lib/common.sh

# catalog timings: health checks every 30 s, so allow a couple of intervals
START_WAIT=${ARCHY_E2E_START_WAIT:-90}
APPS=(bitcoin-core lnd bitcoin-ui)


@test "the generator made units for the three apps and none for masked ones" {
  for id in "${APPS[@]}"; do
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
  lnd_active >/dev/null || fail "not SERVER_ACTIVE"
}

@test "bitcoin-ui proxies RPC to bitcoind: 200 from the host" {
  wait_for "$START_WAIT" is_state archy-bitcoin-ui.service active || fail "$(why bitcoin-ui)"
  code=$(curl -s -o /tmp/body -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"1.0","id":"e2e","method":"getblockchaininfo","params":[]}' http://127.0.0.1:8081/rpc)
  [ "$code" = 200 ] || fail "HTTP $code: $(cat /tmp/body)"
}

@test "archy.target is active once its apps are" {
  wait_for 30 is_state archy.target active || fail "archy.target: $(prop archy.target ActiveState)"
}

@test "each unit turned active only after its container's first passing health check" {
  boot=$(mgr_us UserspaceTimestamp)   # the user manager started (its generators ran first)
  note "user manager start -> generators done $(secs "$boot" "$(mgr_us GeneratorsFinishTimestamp)")s -> units loaded $(secs "$boot" "$(mgr_us UnitsLoadFinishTimestamp)")s"
  for id in "${APPS[@]}"; do
    ready "$id" || fail "$(why "$id")"
    started=$(rfc_us "$(upodman inspect --format '{{.State.StartedAt}}' "archy-$id")")
    healthy=$(first_healthy_us "archy-$id") || fail "archy-$id: no passing check in podman's health log"
    active=$(ts_us "archy-$id.service" ActiveEnterTimestamp)
    [ "$started" -lt "$healthy" ] || fail "archy-$id: healthy before its container started?"
    [ "$healthy" -le "$active" ] || fail "archy-$id.service active at $active, $(secs "$active" "$healthy") s before its first passing check ($healthy)"
    note "$id: manager start -> container up $(secs "$boot" "$started")s -> healthy $(secs "$boot" "$healthy")s -> unit active $(secs "$boot" "$active")s"
  done
}

@test "lnd and bitcoin-ui started only once bitcoin-core was active" {
  core=$(prop archy-bitcoin-core.service ActiveEnterTimestampMonotonic)
  [ "$core" -gt 0 ] || fail "bitcoin-core never active"
  for id in lnd bitcoin-ui; do
    # the start job leaves `inactive` when it runs: ExecCondition, then ExecStartPre, then podman
    began=$(prop "archy-$id.service" InactiveExitTimestampMonotonic)
    [ "$began" -ge "$core" ] ||
      fail "archy-$id.service began starting $(secs "$began" "$core") s before bitcoin-core was active"
    note "$id began starting $(secs "$core" "$began")s after bitcoin-core turned active"
  done
}

@test "a killed bitcoind is restarted by systemd and healthy again; lnd never fails meanwhile" {
  ready bitcoin-core || skip "bitcoin-core is not running"
  inv=$(prop archy-bitcoin-core.service InvocationID)
  n=$(prop archy-bitcoin-core.service NRestarts)
  old=$(cid archy-bitcoin-core)
  lnd_inv=$(prop archy-lnd.service InvocationID)
  t0=$(now_us)
  upodman kill archy-bitcoin-core >/dev/null
  # sample lnd's state from the kill until bitcoind is healthy again and lnd is back on it
  restarted= healthy= lnd_back= seen=" " deadline=$((t0 + START_WAIT * 1000000))
  while :; do
    s=$(prop archy-lnd.service ActiveState)
    case $seen in *" $s "*) ;; *) seen="$seen$s " ;; esac
    [ "$s" != failed ] || fail "archy-lnd.service failed while bitcoind restarted: $(why lnd)"
    [ -n "$restarted" ] || ! restarts_at_least archy-bitcoin-core.service $((n + 1)) || restarted=$(now_us)
    [ -n "$healthy" ] || ! ready bitcoin-core || healthy=$(now_us)
    [ -z "$healthy" ] || ! lnd_active >/dev/null || { lnd_back=$(now_us); break; }
    [ "$(now_us)" -lt "$deadline" ] || fail "not recovered in ${START_WAIT}s (restarted: ${restarted:-no}, healthy: ${healthy:-no}): $(why bitcoin-core)"
    sleep 0.2
  done
  [ "$(prop archy-bitcoin-core.service InvocationID)" != "$inv" ] || fail "same InvocationID"
  [ "$(cid archy-bitcoin-core)" != "$old" ] || fail "same container"
  [ "$(prop archy-bitcoin-core.service NRestarts)" = $((n + 1)) ] || fail "NRestarts $(prop archy-bitcoin-core.service NRestarts), want $((n + 1))"
  is_state archy-lnd.service active || fail "lnd: $(why lnd)"
  note "kill -> restart $(secs "$t0" "$restarted")s -> active+healthy $(secs "$t0" "$healthy")s -> lnd SERVER_ACTIVE $(secs "$t0" "$lnd_back")s"
  note "lnd meanwhile:${seen% }; $([ "$(prop archy-lnd.service InvocationID)" = "$lnd_inv" ] && echo "not restarted" || echo "restarted")"
}

@test "bitcoin-ui still proxies after bitcoind was recreated" {
  is_state archy-bitcoin-ui.service active || skip "bitcoin-ui is not running"
  ui_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"method":"uptime"}' http://127.0.0.1:8081/rpc)" = 200 ]; }
  wait_for 30 ui_ok || fail "the UI no longer reaches bitcoind (an upstream address resolved once, at startup?)"
}
