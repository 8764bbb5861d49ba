#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core btcpay-postgres nbxplorer btcpayserver
#
# Apps that cannot serve until bitcoind has synced (issue 9): while the stand-in bitcoind is in
# initial block download, NBXplorer and BTCPay Server start, are not reported active, are not
# killed or restarted, and `archy-hook status` says what each waits for, in the app's own terms;
# once the sync ends they turn active by themselves.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh syncing

source /src/tests/e2e/lib/common.sh

HOOK=/usr/libexec/archipelago/archy-hook
WAIT=${ARCHY_E2E_START_WAIT:-120}
# how long the wait is watched: several health intervals (30 s) and start-up checks (5 s)
HOLD=${ARCHY_E2E_SYNC_HOLD:-70}
W=${BATS_FILE_TMPDIR:-/root}/syncing

setup_file() { mkdir -p -m 700 "$W"; }


@test "bitcoind starts syncing: its dependents wait instead of failing" {
  wait_for "$WAIT" ready bitcoin-core || fail "$(why bitcoin-core)"
  wait_for "$WAIT" ready btcpay-postgres || fail "$(why btcpay-postgres)"
  uctl stop archy-btcpayserver.service archy-nbxplorer.service
  # from here bitcoind reports an initial sync: blocks behind headers, an hours-old tip
  touch "$DATA/bitcoin-core/standin-ibd"
  uctl start --no-block archy-nbxplorer.service archy-btcpayserver.service
  t0=$(now)
  for u in archy-nbxplorer.service archy-btcpayserver.service; do
    [ "$(prop "$u" TimeoutStartUSec)" = infinity ] || fail "$u: TimeoutStartUSec=$(prop "$u" TimeoutStartUSec)"
  done
  waiting() {
    as_node "$HOOK" status >"$W/status"
    grep '^nbxplorer ' "$W/status" | grep -q 'waiting: NBXplorer is CoreSynching'
  }
  wait_for 60 waiting || fail "status does not say NBXplorer waits: $(cat "$W/status")"
  note "after $(since "$t0"): $(row nbxplorer | cut -c1-150)"
  sleep "$HOLD"
  for id in nbxplorer btcpayserver; do
    u=archy-$id.service
    [ "$(prop "$u" ActiveState)" != active ] || fail "$id is active while bitcoind syncs"
    [ "$(prop "$u" NRestarts)" = 0 ] || fail "$id was restarted $(prop "$u" NRestarts) times while it waited"
    [ "$(health "archy-$id")" != healthy ] || fail "$id healthy while bitcoind syncs"
  done
  as_node "$HOOK" status >"$W/status"
  grep '^btcpayserver ' "$W/status" | grep -q 'waiting' || fail "status for btcpayserver: $(grep '^btcpayserver ' "$W/status")"
  note "after $(since "$t0"), not restarted: $(row btcpayserver | cut -c1-170)"
  as_node "$HOOK" status --json | grep '"app":"nbxplorer"' | grep -q '"detail":"waiting: NBXplorer is CoreSynching"' ||
    fail "status --json: $(as_node "$HOOK" status --json | grep nbxplorer)"
}

@test "the sync ends: they turn active by themselves" {
  rm -f "$DATA/bitcoin-core/standin-ibd"
  t0=$(now)
  wait_for "$WAIT" ready nbxplorer || fail "$(why nbxplorer)"
  t1=$(since "$t0")
  wait_for "$WAIT" ready btcpayserver || fail "$(why btcpayserver)"
  for id in nbxplorer btcpayserver; do
    [ "$(prop "archy-$id.service" NRestarts)" = 0 ] || fail "$id restarted"
  done
  note "sync over -> nbxplorer active after $t1, btcpayserver after $(since "$t0"), neither restarted"
}
