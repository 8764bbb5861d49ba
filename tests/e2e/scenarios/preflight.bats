#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core
#
# Issue 4, must-show 5: when free space under an app's data dir is below its disk reserve, the
# app does not start and does not loop. archy runs `archy-hook preflight` as the unit's
# ExecCondition=: systemd then reports the start as skipped (inactive, Result=exec-condition), not
# failed, and Restart= does not retry it. Shown for a new app whose manifest asks for more than
# the disk has, and for a running catalog app that crashes after node.toml's reserve went up
# (Restart=always tries once, the condition stops it). The reserve is 100T, so the test bed's disk
# cannot meet it. archy-reconcile.path is stopped: every start attempt here is the test's own or
# systemd's Restart=.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh preflight

source /src/tests/e2e/lib/common.sh

START_WAIT=${ARCHY_E2E_START_WAIT:-90}
ADMIN=/etc/archipelago/apps
NODE=/etc/archipelago/node.toml
HOOK=/usr/libexec/archipelago/archy-hook
W=${BATS_FILE_TMPDIR:-/tmp}/preflight
OBSERVE=${ARCHY_E2E_OBSERVE:-15}

setup_file() { mkdir -p "$W"; }

# one line of what systemd says about a unit
states() {
  local u=archy-$1.service
  echo "ActiveState=$(prop "$u" ActiveState) SubState=$(prop "$u" SubState) Result=$(prop "$u" Result) NRestarts=$(prop "$u" NRestarts)"
}
# how many times the app's preflight logged its refusal (by archy's own journal fields)
refusals() { ujournal ARCHY_APP="$1" ARCHY_HOOK=preflight -o cat | grep -c 'below the disk reserve' || true; }

hungry() {  # the manifest of a small app with a data dir; $1: its [service] lines
  cat <<EOF
[app]
id = "hungry"

[image]
ref = "docker.io/nginxinc/nginx-unprivileged:1.29-alpine"

[container]
ports = [{ host = 8091, container = 8080, address = "127.0.0.1" }]
tmpfs = ["/tmp", "/var/cache/nginx"]
read_only = true

[[container.volumes]]
from = "data"
target = "/data"

[health]
cmd = "wget -q -O /dev/null http://127.0.0.1:8080/"
interval = "10s"
start_period = "30s"

[service]
$1
EOF
}

@test "bitcoin-core runs, healthy" {
  wait_for "$START_WAIT" is_state archy-bitcoin-core.service active || fail "$(why bitcoin-core)"
  [ "$(health archy-bitcoin-core)" = healthy ] || fail "health: $(health archy-bitcoin-core)"
  # reconcile would start archy.target (so every skipped app again) at each manifest write: this
  # scenario counts start attempts, so it starts units itself
  uctl stop archy-reconcile.path
}

@test "a new app whose reserve (100T) is not met: skipped at start, with the preflight message" {
  hungry 'disk_reserve = "100T"' | install_file "$ADMIN/hungry.toml"
  uctl daemon-reload
  t0=$(now)
  uctl start archy-hungry.service 2>"$W/start.err" && rc=0 || rc=$?
  echo "# systemctl --user start archy-hungry.service: exit $rc $(cat "$W/start.err") after $(since "$t0")" >&3
  wait_for 10 is_state archy-hungry.service inactive || fail "$(why hungry)"
  [ "$(prop archy-hungry.service Result)" = exec-condition ] || fail "$(states hungry)"
  [ "$(prop archy-hungry.service NRestarts)" = 0 ] || fail "$(states hungry)"
  [ -z "$(upodman ps -aq --filter name=archy-hungry)" ] || fail "a container was created"
  echo "# archy-hungry: $(states hungry)" >&3
  status=$(uctl status --no-pager -n 10 archy-hungry.service 2>&1 || true)
  grep -q 'ExecCondition=.*preflight hungry (code=exited, status=1/FAILURE)' <<<"$status" || fail "status: $status"
  grep -q 'below the disk reserve of 100T' <<<"$status" || fail "status: $status"
  grep -E '^ *(Active|Process|Status):|disk reserve' <<<"$status" | sed 's/^/# status: /' >&3
  prop archy-hungry.service InvocationID >"$W/hungry.inv"
}

@test "node.toml's reserve (100T) not met: a crashed bitcoin-core is tried once, then stays down" {
  is_state archy-bitcoin-core.service active || skip "bitcoin-core is not running"
  cp "$NODE" "$W/node.toml.orig"
  { grep -v '^disk_reserve' "$W/node.toml.orig" | sed '/^\[/,$d'; echo 'disk_reserve = "100T"'
    sed -n '/^\[/,$p' "$W/node.toml.orig"; } | install_file "$NODE"
  n=$(prop archy-bitcoin-core.service NRestarts)
  t0=$(now)
  upodman kill archy-bitcoin-core >/dev/null
  # Restart=always tries again (after RestartSec=5s); the condition fails that attempt
  wait_for 30 restarts_at_least archy-bitcoin-core.service $((n + 1)) || fail "no restart attempt: $(why bitcoin-core)"
  wait_for 10 is_state archy-bitcoin-core.service inactive || fail "$(why bitcoin-core)"
  echo "# kill -> restart attempt -> skipped: $(since "$t0"); $(states bitcoin-core)" >&3
  [ "$(prop archy-bitcoin-core.service Result)" = exec-condition ] || fail "$(states bitcoin-core)"
  prop archy-bitcoin-core.service InvocationID >"$W/core.inv"
  prop archy-bitcoin-core.service NRestarts >"$W/core.n"
}

@test "no loop: over ${OBSERVE}s neither app is tried again, and each logged the refusal once" {
  [ -s "$W/hungry.inv" ] || skip "no skipped app"
  t0=$(now); polls=0
  # observed, not slept: every half second both units must still be down with nothing new
  until [ "$(awk -v a="$t0" -v b="$(now)" -v s="$OBSERVE" 'BEGIN { print (b - a >= s) }')" = 1 ]; do
    [ "$(prop archy-hungry.service ActiveState)" = inactive ] || fail "hungry: $(states hungry)"
    [ "$(prop archy-hungry.service NRestarts)" = 0 ] || fail "hungry restarted: $(states hungry)"
    [ "$(prop archy-hungry.service InvocationID)" = "$(cat "$W/hungry.inv")" ] || fail "hungry: a new invocation"
    if [ -s "$W/core.inv" ]; then
      [ "$(prop archy-bitcoin-core.service ActiveState)" = inactive ] || fail "bitcoin-core: $(states bitcoin-core)"
      [ "$(prop archy-bitcoin-core.service NRestarts)" = "$(cat "$W/core.n")" ] || fail "bitcoin-core: $(states bitcoin-core)"
      [ "$(prop archy-bitcoin-core.service InvocationID)" = "$(cat "$W/core.inv")" ] || fail "bitcoin-core: a new invocation"
    fi
    polls=$((polls + 1)); sleep 0.5
  done
  [ "$(refusals hungry)" = 1 ] || fail "hungry's preflight logged $(refusals hungry) refusals"
  echo "# $polls polls over $(since "$t0"): hungry $(states hungry); refusals logged: $(refusals hungry)" >&3
  if [ -s "$W/core.inv" ]; then
    [ "$(refusals bitcoin-core)" = 1 ] || fail "bitcoin-core's preflight logged $(refusals bitcoin-core) refusals"
    echo "# bitcoin-core $(states bitcoin-core); refusals logged: $(refusals bitcoin-core)" >&3
    [ -z "$(upodman ps -q --filter name=archy-bitcoin-core)" ] || fail "a bitcoin-core container runs"
  fi
  ujournal ARCHY_APP=hungry ARCHY_HOOK=preflight -o cat | sed 's/^/# journal: /' >&3
}

@test "archy-hook status shows both held by the preflight, with its message" {
  as_node "$HOOK" status >"$W/status" || fail "archy-hook status failed"
  sed 's/^/# /' "$W/status" >&3
  grep -E '^hungry +held/preflight .*below the disk reserve' "$W/status" || fail "hungry: $(cat "$W/status")"
  grep -E '^bitcoin-core +held/preflight ' "$W/status" || fail "bitcoin-core: $(cat "$W/status")"
}

@test "with the reserve met again, a start runs both" {
  [ -s "$W/node.toml.orig" ] && install_file "$NODE" <"$W/node.toml.orig"
  hungry 'disk_reserve = "1M"' | install_file "$ADMIN/hungry.toml"
  uctl daemon-reload
  t0=$(now)
  uctl start archy-hungry.service archy-bitcoin-core.service || fail "$(why hungry; why bitcoin-core)"
  wait_for "$START_WAIT" is_state archy-hungry.service active || fail "$(why hungry)"
  wait_for "$START_WAIT" is_state archy-bitcoin-core.service active || fail "$(why bitcoin-core)"
  echo "# start -> both active: $(since "$t0"); hungry $(health archy-hungry), bitcoin-core $(health archy-bitcoin-core)" >&3
}
