#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# Issue 4, must-shows 1-3: the bitcoin-ui companion proxies to the stand-in bitcoind, which demands
# the UI's own RPC password (bitcoin-ui-rpc); `archy-hook rotate` of it and of the apps' password
# (bitcoind-rpc) alone (archy-secret@<name>.path does the rest) brings the UI back to 200 within
# seconds, bitcoind rejects the old passwords and lnd is connected with the new one. Then the old and the new password are looked for everywhere a local
# user or the logs could see them: unit files, `systemctl --user show` of every unit, process
# command lines and environments, podman's container configs, the whole journal.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh rotation

source /src/tests/e2e/lib/common.sh

START_WAIT=${ARCHY_E2E_START_WAIT:-90}
SECRET=$NODE_STATE/archipelago/secrets/bitcoin-ui-rpc
APP_SECRET=$NODE_STATE/archipelago/secrets/bitcoind-rpc
HOOK=/usr/libexec/archipelago/archy-hook
APPS=(bitcoin-core lnd bitcoin-ui)
# files shared between the tests: the secrets' values live only in root-only files, never in a
# command line of this script (they are what it looks for)
W=${BATS_FILE_TMPDIR:-/root}/rotation

setup_file() { mkdir -p -m 700 "$W"; }

# ui_code: the HTTP status of an RPC through the UI (the UI adds the credentials)
ui_code() {
  curl -s -o "$W/body" -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"1.0","id":"e2e","method":"getblockchaininfo","params":[]}' http://127.0.0.1:8081/rpc
}
ui_ok() { [ "$(ui_code)" = 200 ]; }

# rpc_as CREDFILE: bitcoin-cli in bitcoind's container, from its address on the archy network,
# with the user/password in CREDFILE (`user:password`) passed through stdin into a config file:
# never on a command line. Prints bitcoin-cli's output; its exit status.
rpc_as() {
  { echo "rpcconnect=bitcoind"; echo "rpcport=8332"
    echo "rpcuser=$(cut -d: -f1 "$1")"; echo "rpcpassword=$(cut -d: -f2- "$1")"; } |
    upodman exec -i archy-bitcoin-core sh -c \
      'umask 077; cat >/tmp/e2e-cli.conf; bitcoin-cli -conf=/tmp/e2e-cli.conf -datadir=/home/bitcoin/.bitcoin -rpcclienttimeout=10 getblockchaininfo; rc=$?; rm -f /tmp/e2e-cli.conf; exit $rc'
}

# which version of the secret each rendered config and running container has (prefixes only)
secret_diag() {
  local S=$NODE_STATE/archipelago
  echo "secret:       rpcauth $(cut -d: -f2 "$APP_SECRET/rpcauth" | cut -c1-8) basic $(cut -c1-14 "$APP_SECRET/basic")"
  echo "bitcoin.conf: rpcauth $(sed -n 's/^rpcauth=bitcoind-rpc:\(.\{8\}\).*/\1/p' "$S/bitcoin-core/config/bitcoin.conf"), in the container: $(upodman exec archy-bitcoin-core sed -n 's/^rpcauth=bitcoind-rpc:\(.\{8\}\).*/\1/p' /etc/bitcoin/bitcoin.conf)"
  echo "nginx.conf:   basic $(grep -o 'Basic [^"]*' "$S/bitcoin-ui/config/nginx.conf" | cut -c7-20)"
  journalctl --no-pager -o short-precise --since=-90s | grep -E 'archy-hook\[|(Starting|Started|Stopped) archy-(bitcoin|lnd|secret)' | cut -c1-180
}


@test "the three apps run, healthy" {
  for id in "${APPS[@]}"; do
    wait_for "$START_WAIT" is_state "archy-$id.service" active || fail "$(why "$id")"
    [ "$(health "archy-$id")" = healthy ] || fail "archy-$id: health $(health "archy-$id")"
  done
  [ "$(prop archy-secret@bitcoind-rpc.path ActiveState)" = active ] ||
    fail "archy-secret@bitcoind-rpc.path: $(prop archy-secret@bitcoind-rpc.path ActiveState)"
}

@test "must-show 1: a request through the UI gets 200; bitcoind demands the password" {
  code=$(ui_code)
  [ "$code" = 200 ] || fail "HTTP $code: $(cat "$W/body")"
  grep -q '"chain":"main"' "$W/body" || fail "not bitcoind's answer: $(cat "$W/body")"
  # the password the apps were started with; the stand-in takes it, and refuses a wrong one
  cp "$SECRET/cookie" "$W/old-cookie"; cp "$SECRET/password" "$W/old-password"; cp "$SECRET/basic" "$W/old-basic"
  cp "$APP_SECRET/password" "$W/old-app-password"; cp "$APP_SECRET/basic" "$W/old-app-basic"
  rpc_as "$W/old-cookie" >"$W/out" 2>&1 || fail "the generated credentials are refused: $(cat "$W/out")"
  echo "archy:not-the-password" >"$W/wrong"
  if rpc_as "$W/wrong" >"$W/out" 2>&1; then fail "bitcoind accepted a wrong password"; fi
  grep -q 'Authorization failed' "$W/out" || fail "unexpected refusal: $(cat "$W/out")"
  echo "# UI 200 with the generated password; a wrong one gets: $(head -n1 "$W/out")" >&3
}

@test "must-show 2: rotate alone brings the UI back to 200 with the new password, lnd follows" {
  declare -A inv
  for id in "${APPS[@]}"; do inv[$id]=$(prop "archy-$id.service" InvocationID); done
  lnd_cid=$(upodman inspect -f '{{.Id}}' archy-lnd)
  t0=$(now)
  as_node "$HOOK" rotate bitcoin-ui-rpc || fail "archy-hook rotate bitcoin-ui-rpc failed"
  as_node "$HOOK" rotate bitcoind-rpc || fail "archy-hook rotate bitcoind-rpc failed"
  ! cmp -s "$SECRET/password" "$W/old-password" || fail "rotate did not change the password"
  ! cmp -s "$APP_SECRET/password" "$W/old-app-password" || fail "rotate did not change the apps' password"
  # nothing else is run from here: systemd (archy-secret@<name>.path) applies the change
  restarted() { [ "$(prop "archy-$1.service" InvocationID)" != "${inv[$1]}" ] && is_state "archy-$1.service" active; }
  wait_for 60 restarted bitcoin-core || fail "bitcoin-core was not restarted: $(why bitcoin-core)"
  wait_for 60 restarted bitcoin-ui || fail "bitcoin-ui was not restarted: $(why bitcoin-ui)"
  wait_for 30 ui_ok || fail "the UI does not get 200 again: HTTP $(ui_code) $(cat "$W/body")"
  ui_s=$(since "$t0")
  echo "# rotate -> UI 200 again (bitcoind and UI restarted, new password): $ui_s" >&3
  # the stand-in (it re-reads bitcoin.conf on every request) refuses the old credentials (the
  # same Basic header the UI sent before: base64 of the old user:password) with 401
  if rpc_as "$W/old-cookie" >"$W/out" 2>&1; then fail "bitcoind still takes the old password"; fi
  grep -q 'Authorization failed' "$W/out" || fail "unexpected refusal: $(cat "$W/out")"
  cp "$SECRET/cookie" "$W/new-cookie"
  rpc_as "$W/new-cookie" >"$W/out" 2>&1 || fail "the new password is refused: $(cat "$W/out")"
  ujournal -u archy-bitcoin-core.service --since=-60s | grep -q 'incorrect or missing credentials: 401' ||
    fail "no 401 in bitcoind's log"
  # lnd: a new instance (it was restarted with the new lnd.conf), connected again
  wait_for 60 restarted lnd || fail "lnd was not restarted: $(why lnd)"
  wait_for 30 lnd_active || fail "lnd not SERVER_ACTIVE after the rotation: $(why lnd)"
  [ "$(upodman inspect -f '{{.Id}}' archy-lnd)" != "$lnd_cid" ] || fail "lnd runs the same container"
  grep -qF -f "$APP_SECRET/password" "$NODE_STATE/archipelago/lnd/config/lnd.conf" || fail "lnd.conf lacks the new password"
  ujournal -u archy-lnd.service --since=-60s -o cat | grep -q 'connected to bitcoind; server active' ||
    fail "lnd's log does not show it reconnected"
  for id in "${APPS[@]}"; do
    echo "# archy-$id.service: InvocationID ${inv[$id]:0:8}.. -> $(prop "archy-$id.service" InvocationID | cut -c1-8).., NRestarts $(prop "archy-$id.service" NRestarts), $(health "archy-$id")" >&3
  done
  echo "# lnd SERVER_ACTIVE again $(since "$t0") after rotate" >&3
  # the hooks said what they did, with their journal fields
  ujournal ARCHY_HOOK=secret-changed -o cat | grep -q 'applied secret `bitcoind-rpc`' ||
    fail "no journal line from secret-changed"
}

@test "must-show 3: neither password is in a unit file, systemctl show, a command line or the journal" {
  cp "$SECRET/password" "$W/new-password"; cp "$SECRET/basic" "$W/new-basic"
  cp "$APP_SECRET/password" "$W/new-app-password"; cp "$APP_SECRET/basic" "$W/new-app-basic"
  # patterns: each password, and the base64 basic credentials built from it (grep -F -f: the
  # values never reach a command line, so grep cannot find itself in /proc)
  for f in old-password old-basic new-password new-basic old-app-password old-app-basic new-app-password new-app-basic; do
    cat "$W/$f"; echo; done >"$W/patterns"
  [ "$(grep -c . "$W/patterns")" = 8 ] || fail "patterns: $(grep -c . "$W/patterns") lines"
  # positive control: the method finds the secret where it must be (the rendered, 0600 configs)
  grep -qF -f "$W/patterns" "$NODE_STATE/archipelago/lnd/config/lnd.conf" || fail "control: lnd.conf"
  grep -qF -f "$W/patterns" "$NODE_STATE/archipelago/bitcoin-ui/config/nginx.conf" || fail "control: nginx.conf"
  found() { grep -aF -f "$W/patterns" "$@" | cut -c1-160; }

  # unit files: the generator's output, archy's static units, and every other unit dir
  dirs=(/run/user/1000/systemd /usr/lib/systemd/user /etc/systemd/user "$NODE_HOME/.config/systemd"
        "$NODE_QUADLET" /etc/containers/systemd)
  n_files=$(find "${dirs[@]}" -type f 2>/dev/null | wc -l)
  hits=$(grep -rlaF -f "$W/patterns" --devices=skip "${dirs[@]}" 2>/dev/null || true)
  [ -z "$hits" ] || fail "in unit files: $hits"
  [ -d /run/user/1000/systemd/generator/archy-quadlet ] || fail "no generator output to search"

  # systemctl --user show of every unit the manager has loaded, and of the manager itself
  mapfile -t units < <(uctl list-units --all --plain --no-legend --full | awk '{print $1}')
  mapfile -t -O "${#units[@]}" units < <(uctl list-unit-files --no-legend --full | awk '$1 !~ /@\./ {print $1}')
  uctl show "${units[@]}" >"$W/show" 2>/dev/null || true
  uctl show >>"$W/show"; uctl show-environment >>"$W/show"
  hits=$(found "$W/show" || true)
  [ -z "$hits" ] || fail "in systemctl --user show: $hits"

  # every process's command line and environment, as root sees them (the containers' too)
  : >"$W/procs"
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; echo; tr '\0' '\n' <"$p/environ"; } >>"$W/procs" 2>/dev/null || true
  done
  n_procs=$(ls -d /proc/[0-9]* | wc -l)
  hits=$(found "$W/procs" || true)
  [ -z "$hits" ] || fail "in a process command line or environment: $hits"

  # podman's own record of each container (environment, command, labels)
  upodman inspect $(upodman ps -aq) >"$W/inspect"
  hits=$(found "$W/inspect" || true)
  [ -z "$hits" ] || fail "in podman inspect: $hits"

  # the whole journal, system and user, every field (export format), as root
  journalctl --no-pager -o export >"$W/journal"
  n_entries=$(grep -ac '^__CURSOR=' "$W/journal")
  [ "$n_entries" -gt 100 ] || fail "the journal has only $n_entries entries"
  # control: it holds the user manager's entries too (the hooks', the containers')
  grep -aq '^MESSAGE=rotated secret `bitcoind-rpc`' "$W/journal" || fail "control: no entry of archy-hook rotate"
  grep -aq '^CONTAINER_NAME=archy-bitcoin-ui' "$W/journal" || fail "control: no entry of the UI's container"
  n_user=$(grep -ac '^_UID=1000' "$W/journal")
  hits=$(found "$W/journal" || true)
  [ -z "$hits" ] || fail "in the journal: $hits"
  echo "# not found in: $n_files unit files, show of ${#units[@]} units + manager, $n_procs processes (cmdline+environ), $(wc -l <"$W/inspect") lines of podman inspect, $n_entries journal entries ($n_user of uid 1000)" >&3
}

@test "a second rotation while the first is being applied: every app ends on the last password" {
  declare -A inv
  for id in "${APPS[@]}"; do inv[$id]=$(prop "archy-$id.service" InvocationID); done
  t0=$(now)
  as_node "$HOOK" rotate bitcoind-rpc || fail "first rotate failed"
  # the second one once the first is being applied (archy-secret@ restarting the apps)
  applying() { [ "$(prop archy-bitcoin-core.service InvocationID)" != "${inv[bitcoin-core]}" ]; }
  wait_for 30 applying || fail "the first rotation was not applied"
  as_node "$HOOK" rotate bitcoind-rpc || fail "second rotate failed"
  cp "$APP_SECRET/cookie" "$W/last-cookie"
  # the UI and bitcoind agree on the last password, and bitcoind takes it
  last_ok() { ui_ok && rpc_as "$W/last-cookie" >/dev/null 2>&1; }
  wait_for 60 last_ok || fail "not on the last password: UI $(ui_code), rpc: $(rpc_as "$W/last-cookie" 2>&1 | head -n 2)
$(secret_diag)"
  wait_for 60 lnd_active || fail "lnd not SERVER_ACTIVE: $(why lnd)"
  for id in "${APPS[@]}"; do
    wait_for 60 is_state "archy-$id.service" active || fail "$(why "$id")"
  done
  grep -qF -f "$APP_SECRET/password" "$NODE_STATE/archipelago/lnd/config/lnd.conf" || fail "lnd.conf is not on the last password"
  echo "# two rotations -> UI, bitcoind and lnd on the last password after $(since "$t0")" >&3
}
