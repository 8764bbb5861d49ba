#!/usr/bin/env bats
# archy-e2e-apps: none
#
# A bitcoind that stops answering. The shipped bitcoin-core manifest, with its health check sped
# up by an admin copy in /etc/archipelago/apps (checks every 2 s, 3 s timeout, bitcoin-cli gives up
# after 2 s, 2 failures make it unhealthy; the catalog's 30 s x 3 would take minutes), and the
# stand-in's test hooks in its data dir: `standin-warmup` (every RPC answers -28, as Core does
# while loading) and `standin-hang` (accepts connections, never answers).
# - While the health check fails, the unit stays `activating`; it turns active once the check passes.
# - A hang once the start period is over: podman finds it unhealthy and kills it
#   (HealthOnFailure=kill), systemd restarts it (NRestarts, a new InvocationID), healthy again.
# - A hang after the app was healthy but within the catalog's start period (1 h for bitcoin-core):
#   the same is expected.
# Every other catalog app is masked: bitcoin-core starts when its admin copy is installed.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh hang

source /src/tests/e2e/lib/common.sh

U=archy-bitcoin-core.service
C=archy-bitcoin-core
DIR=$DATA/bitcoin-core
WAIT=${ARCHY_E2E_START_WAIT:-60}

# install bitcoin-core's admin copy with fast health checks and START_PERIOD, and (re)start it
# from a stopped unit (so nothing else restarts it: archy-reconcile only restarts running apps)
fast_bitcoin_core() {
  [ "$(prop "$U" LoadState)" != loaded ] || uctl stop "$U"
  sed -e 's/-rpcclienttimeout=10/-rpcclienttimeout=2/' -e 's/^interval = .*/interval = "2s"/' \
    -e 's/^timeout = .*/timeout = "3s"/' -e 's/^retries = .*/retries = 2/' \
    -e "s/^start_period = .*/start_period = \"$1\"/" /usr/share/archipelago/apps/bitcoin-core.toml |
    admin_manifest bitcoin-core
  grep -q "^start_period = \"$1\"" /etc/archipelago/apps/bitcoin-core.toml || fail "the override did not apply"
  uctl daemon-reload
  uctl start --no-block "$U"
}
# fails N: how many failed checks podman's health log holds (it keeps the last 5)
failed_checks() { upodman inspect --format '{{range .State.Health.Log}}{{if ne .ExitCode 0}}x{{end}}{{end}}' "$C" | tr -d '\n' | wc -c; }
failed_at_least() { [ "$(failed_checks)" -ge "$1" ]; }
# the unit's main process (conmon) is gone: the container died
main_gone() { [ "$(prop "$U" SubState)" != running ]; }
started_us() { rfc_us "$(upodman inspect --format '{{.State.StartedAt}}' "$C")"; }
past() { [ "$(now_us)" -ge "$1" ]; }

setup_file() { install -d -o node -g node "$DIR"; }
teardown() { rm -f "$DIR/standin-hang" "$DIR/standin-warmup"; }

@test "while its health check fails, bitcoin-core stays activating; active once it passes" {
  as_node touch "$DIR/standin-warmup"
  fast_bitcoin_core 1h
  wait_for "$WAIT" is_health "$C" starting || fail "no container starting: $(why bitcoin-core)"
  t0=$(started_us)
  # sample the unit while podman records failing checks
  seen=" "
  until failed_at_least 3; do
    s=$(prop "$U" ActiveState)/$(prop "$U" SubState)
    case $seen in *" $s "*) ;; *) seen="$seen$s " ;; esac
    [ "$(prop "$U" ActiveState)" = activating ] || fail "the unit is $s while the check fails: $(why bitcoin-core)"
    past $((t0 + WAIT * 1000000)) && fail "no 3 failed checks in ${WAIT}s: $(why bitcoin-core)"
    sleep 0.2
  done
  [ "$(prop "$U" ActiveState)" = activating ] || fail "unit $(prop "$U" ActiveState) after 3 failed checks"
  [ "$(health "$C")" = starting ] || fail "health $(health "$C")"
  t1=$(now_us)
  rm "$DIR/standin-warmup"
  wait_for "$WAIT" ready bitcoin-core || fail "not ready after the warmup ended: $(why bitcoin-core)"
  healthy=$(first_healthy_us "$C"); active=$(ts_us "$U" ActiveEnterTimestamp)
  [ "$healthy" -le "$active" ] || fail "active $(secs "$active" "$healthy")s before the first passing check"
  note "container up -> 3 failed checks, unit${seen% } -> $(secs "$t0" "$t1")s; warmup over -> healthy $(secs "$t1" "$healthy")s -> active $(secs "$t1" "$active")s"
}

# hang_and_recover: touch the hang file; podman must kill the container and systemd restart it;
# once the kill is seen the hang file goes and the app must be healthy again
hang_and_recover() {
  ready bitcoin-core || fail "not ready: $(why bitcoin-core)"
  n=$(prop "$U" NRestarts); inv=$(prop "$U" InvocationID); old=$(cid "$C")
  t0=$(now_us); since=$(date -u -d "@$(( t0 / 1000000 - 1 ))" +%Y-%m-%dT%H:%M:%SZ)
  as_node touch "$DIR/standin-hang"
  wait_for "$1" main_gone || fail "still running $1s after the hang: health $(health "$C"), failing streak $(upodman inspect --format '{{.State.Health.FailingStreak}}' "$C")"
  killed=$(now_us)
  # podman's own record: the check turned unhealthy, then podman killed the container
  ev=$(upodman events --stream=false --since "$since" --filter container="$old" --format '{{.Status}} {{.HealthStatus}}' |
    grep -E '^(health_status unhealthy|kill|died)' | uniq | tr '\n' ',')
  [[ $ev == *"health_status unhealthy,kill"* ]] || fail "not killed by its health check; podman's events: $ev"
  wait_for "$WAIT" restarts_at_least "$U" $((n + 1)) || fail "no restart: $(why bitcoin-core)"
  restarted=$(now_us)
  rm "$DIR/standin-hang"
  wait_for "$WAIT" ready bitcoin-core || fail "not healthy again: $(why bitcoin-core)"
  healthy=$(now_us)
  [ "$(prop "$U" InvocationID)" != "$inv" ] || fail "same InvocationID"
  [ "$(cid "$C")" != "$old" ] || fail "same container"
  [ "$(prop "$U" NRestarts)" = $((n + 1)) ] || fail "NRestarts $(prop "$U" NRestarts), want $((n + 1))"
  note "hang -> unhealthy, killed $(secs "$t0" "$killed")s -> restarted $(secs "$t0" "$restarted")s (NRestarts $n -> $((n + 1))); hang over -> healthy $(secs "$restarted" "$healthy")s"
}

@test "a hang after the start period: podman kills it, systemd restarts it, healthy again" {
  fast_bitcoin_core 3s
  wait_for "$WAIT" ready bitcoin-core || fail "$(why bitcoin-core)"
  wait_for 10 past $(( $(started_us) + 3000000 ))   # the start period is over
  hang_and_recover 30
}

@test "a hang within the catalog's start period, once the app was healthy: killed and restarted too" {
  # bitcoin-core's manifest has start_period = "1h" so that a long "Loading block index" does
  # not count; it must not also hide a bitcoind that hangs in its first hour after a (re)start
  fast_bitcoin_core 1h
  wait_for "$WAIT" ready bitcoin-core || fail "$(why bitcoin-core)"
  hang_and_recover 30
}
