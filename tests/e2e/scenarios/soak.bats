#!/usr/bin/env bats
#
# Sustained chaos (issue 17): the whole node, then random faults of every kind for a while, each
# 0.3-4 s after the last and some of them overlapping: `podman kill`, `stop`, `pause` (then a
# kill, restart or rm of the paused app) and `rm -f` of the containers, SIGKILL and `systemctl restart` of the units, `archy-hook rotate` of the
# rotatable secrets, admin manifest edits, daemon-reloads. Then hands off. What must hold, read from
# systemd's and podman's state: every app active and healthy within a bound, no failed unit, no
# transient unit or timer of a container that no longer exists, no container that is not an
# active app's, each app on its latest manifest, the UI answering with the current password, and
# every rendered config the same in its container as on the host.
# No `archy-e2e-apps` line: the whole catalog runs.
#   ARCHY_E2E_SOAK_SECS      how long the faults go on (default 150; the issue's long form is 600)
#   ARCHY_E2E_SOAK_SEED      the random seed (default: the time); printed, so a run can be replayed
#   ARCHY_E2E_SOAK_CONVERGE  seconds the node has to converge after the last fault (default 420)
# Run: ARCHY_STAGE=DIR ARCHY_E2E_SOAK_SECS=600 ARCHY_E2E_TIMEOUT=2400 tests/e2e/run.sh soak

source /src/tests/e2e/lib/common.sh

WAIT=${ARCHY_E2E_START_WAIT:-300}
SOAK=${ARCHY_E2E_SOAK_SECS:-150}
CONVERGE=${ARCHY_E2E_SOAK_CONVERGE:-420}
HOOK=/usr/libexec/archipelago/archy-hook
SECRETS=$NODE_STATE/archipelago/secrets
APPS=(bitcoin-core bitcoin-ui btcpay-postgres btcpayserver electrumx fedimint filebrowser lnd lnd-ui
  mempool-backend mempool-frontend mempool-mariadb nbxplorer)
# the secrets a rotation may change under running apps (the others are rotate = false)
ROTATABLE=(bitcoind-rpc bitcoin-ui-rpc)
# the apps an admin edits during the soak: their manifests get an environment variable
EDITED=(bitcoin-ui lnd-ui filebrowser mempool-frontend electrumx)
W=${BATS_FILE_TMPDIR:-/root}/soak

setup_file() { mkdir -p -m 700 "$W"; }

# edit ID N: the admin's manifest for ID: the vendor one with ARCHY_SOAK_EDIT=N in its environment
edit() {
  local v=/usr/share/archipelago/apps/$1.toml
  if grep -q '^environment = { ' "$v"; then
    sed "s/^environment = { /environment = { ARCHY_SOAK_EDIT = \"$2\", /" "$v"
  else
    sed "s/^\[container\]\$/[container]\nenvironment = { ARCHY_SOAK_EDIT = \"$2\" }/" "$v"
  fi | admin_manifest "$1"
}
# env_of ID NAME: the value of an environment variable in the app's container
env_of() { upodman inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "archy-$1" 2>/dev/null | sed -n "s/^$2=//p"; }

# ui_code: an RPC through bitcoin-ui (which adds its own credentials)
ui_code() {
  curl -s -o "$W/ui" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"1.0","id":"soak","method":"getblockchaininfo","params":[]}' http://127.0.0.1:8081/rpc
}

@test "the whole node is up and healthy" {
  mempool_pools_offline "$WAIT" || fail "the mempool backend never asked for the pools list: $(why mempool-backend)"
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || { as_node "$HOOK" status >&2; fail "$(why "$id")"; }
  done
  note "all ${#APPS[@]} apps healthy; soak of ${SOAK}s follows"
}

# fault KIND: one fault of that kind on a random target, started in the background; prints
# "KIND TARGET"
fault() {
  local id=${APPS[RANDOM % ${#APPS[@]}]}
  case $1 in
    rotate) id=${ROTATABLE[RANDOM % ${#ROTATABLE[@]}]} ;;
    edit) id=${EDITED[RANDOM % ${#EDITED[@]}]}; edits=$((edits + 1)); echo "$edits" >"$W/edit.$id" ;;
    daemon-reload) id=- ;;
  esac
  # an edit is a file renamed into place: at once, and in order (the latest must win)
  [ "$1" != edit ] || edit "$id" "$edits"
  case $1 in
    podman-kill) upodman kill "archy-$id" ;;
    podman-stop) upodman stop -t 3 "archy-$id" ;;
    # a pause, then what ends it a moment later: the sequences that used to wedge an app for
    # good (a pause alone is the admin's, and archy leaves it: status shows it as paused)
    podman-pause) upodman pause "archy-$id"
      sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + 3.7 * r / 32767 }')"
      case $((RANDOM % 4)) in
        0) uctl kill --signal=KILL "archy-$id.service" ;;
        1) uctl restart --no-block "archy-$id.service" ;;
        2) upodman kill "archy-$id" ;;
        3) upodman rm -f -t 3 "archy-$id" ;;
      esac ;;
    podman-rm) upodman rm -f -t 3 "archy-$id" ;;
    unit-sigkill) uctl kill --signal=KILL "archy-$id.service" ;;
    unit-restart) uctl restart --no-block "archy-$id.service" ;;
    rotate) as_node "$HOOK" rotate "$id" ;;
    daemon-reload) uctl daemon-reload ;;
  esac >>"$W/faults.out" 2>&1 &
  printf '%s %s %s\n' "$(date +%T.%N | cut -c1-12)" "$1" "$id"
}

@test "random faults of every kind, then hands off" {
  seed=${ARCHY_E2E_SOAK_SEED:-$(date +%s)}
  RANDOM=$seed
  kinds=(podman-kill podman-stop podman-pause podman-rm unit-sigkill unit-restart rotate edit daemon-reload)
  edits=0; : >"$W/faults"
  end=$(( $(date +%s) + SOAK ))
  while [ "$(date +%s)" -lt "$end" ]; do
    kind=${kinds[RANDOM % ${#kinds[@]}]}
    fault "$kind" >>"$W/faults"   # not in $(...): the counter of edits must stay here
    # a fault may take a while (a stop, a restart); at most 4 run at once
    while [ "$(jobs -rp | wc -l)" -ge 4 ]; do sleep 0.1; done
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + 3.7 * r / 32767 }')"
  done
  wait
  now_us >"$W/last-fault"
  note "seed $seed: $(wc -l <"$W/faults") faults in ${SOAK}s: $(cut -d' ' -f2 "$W/faults" | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }' | sed 's/, $//')"
}

@test "the node converges by itself: every app active and healthy" {
  t0=$(cat "$W/last-fault"); deadline=$((t0 + CONVERGE * 1000000))
  declare -A at   # app -> "when it was first seen ready (us) its NRestarts then"
  while :; do
    for id in "${APPS[@]}"; do
      [ -n "${at[$id]:-}" ] || ! ready "$id" || at[$id]="$(now_us) $(prop "archy-$id.service" NRestarts)"
    done
    [ "${#at[@]}" -lt "${#APPS[@]}" ] || break
    if [ "$(now_us)" -ge "$deadline" ]; then
      as_node "$HOOK" status >&2; dump_state
      for id in "${APPS[@]}"; do [ -n "${at[$id]:-}" ] || why "$id" >&2; done
      fail "not converged ${CONVERGE}s after the last fault: $(for id in "${APPS[@]}"; do [ -n "${at[$id]:-}" ] || printf '%s ' "$id"; done)"
    fi
    sleep 1
  done
  last=$(for id in "${APPS[@]}"; do echo "${at[$id]} $id"; done | sort -n | tail -n 1 | cut -d' ' -f1)
  note "converged $(secs "$t0" "$last")s after the last fault; the last three: $(for id in "${APPS[@]}"; do echo "${at[$id]} $id"; done |
    sort -n | tail -n 3 | awk -v t0="$t0" '{ printf "%s %.1fs (NRestarts %s)  ", $3, ($1 - t0) / 1e6, $2 }')"
}

@test "no failed unit, no leftover health-check unit, no container that is not an active app's" {
  # a health check that failed once just before the node converged leaves its transient service
  # failed until the next check passes (the longest interval here is 30 s): that is podman's
  # record of one probe, not a leftover; one still failed after two intervals is
  no_failed() { [ -z "$(uctl list-units --failed --plain --no-legend)" ]; }
  wait_for 70 no_failed || true
  uctl list-units --failed --plain --no-legend | awk '{ print $1 }' >"$W/failed"
  upodman ps -a --format '{{.ID}} {{.Names}} {{.State}}' --no-trunc >"$W/ctrs"
  # podman's health checks are transient <container id>-<random>.{timer,service} units
  uctl list-units --all --plain --no-legend '*.timer' '*.service' | awk '{ print $1 }' |
    grep -E '^[0-9a-f]{64}-' >"$W/hc-units" || true
  while read -r u; do grep -q "^${u:0:64} " "$W/ctrs" || echo "$u"; done <"$W/hc-units" >"$W/stale"
  while read -r id name state; do
    app=${name#archy-}
    [ "$(prop "archy-$app.service" ActiveState)" = active ] && [ "$state" = running ] &&
      [ "$(cid "$name")" = "$id" ] || echo "$name ($state)"
  done <"$W/ctrs" >"$W/orphans"
  note "leftovers: $(grep -c . "$W/failed") failed unit(s), $(grep -c . "$W/stale") health-check unit(s) of gone containers, $(grep -c . "$W/orphans") orphaned container(s); $(grep -c . "$W/hc-units") health-check units for $(grep -c . "$W/ctrs") containers"
  [ ! -s "$W/failed" ] || fail "failed units: $(cat "$W/failed")"
  [ ! -s "$W/stale" ] || fail "health-check units of containers that are gone: $(cat "$W/stale")"
  [ ! -s "$W/orphans" ] || fail "containers that are not an active app's: $(cat "$W/orphans")"
  [ "$(grep -c . "$W/ctrs")" = "${#APPS[@]}" ] || fail "$(grep -c . "$W/ctrs") containers for ${#APPS[@]} apps: $(cat "$W/ctrs")"
}

@test "each edited app runs its latest manifest" {
  for id in "${EDITED[@]}"; do
    [ -f "$W/edit.$id" ] || continue
    want=$(cat "$W/edit.$id")
    [ "$(env_of "$id" ARCHY_SOAK_EDIT)" = "$want" ] || fail "$id runs edit $(env_of "$id" ARCHY_SOAK_EDIT), the admin's latest is $want"
  done
}

@test "the UI answers with the current password; the configs match the secrets, inside and out" {
  code=$(ui_code)
  [ "$code" = 200 ] || fail "the UI: HTTP $code $(cat "$W/ui")"
  S=$NODE_STATE/archipelago
  # bitcoind takes the current rpcauth of each rotatable secret, the UI sends the current password
  for s in bitcoind-rpc bitcoin-ui-rpc; do
    grep -qxF "rpcauth=$(cat "$SECRETS/$s/rpcauth")" "$S/bitcoin-core/config/bitcoin.conf" ||
      fail "bitcoin.conf does not hold the current rpcauth of $s"
  done
  grep -qF "Basic $(cat "$SECRETS/bitcoin-ui-rpc/basic")" "$S/bitcoin-ui/config/nginx.conf" ||
    fail "nginx.conf does not hold the current password of bitcoin-ui-rpc"
  # every rendered config is, in its container, what is on the host
  n=0
  for id in "${APPS[@]}"; do
    for f in "$S/$id"/config/*; do
      [ -f "$f" ] || continue
      target=$(upodman inspect -f '{{range .Mounts}}{{.Source}} {{.Destination}}{{"\n"}}{{end}}' "archy-$id" |
        awk -v s="$f" '$1 == s { print $2 }')
      [ -n "$target" ] || continue
      upodman exec "archy-$id" cat "$target" | cmp -s - "$f" || fail "$id: $target differs from $f"
      n=$((n + 1))
    done
  done
  note "UI 200 with the current password; $n rendered configs identical inside their containers"
}
