#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core bitcoin-ui
#
# Issue 5, must-shows 1-6: manifests written into /etc/archipelago/apps/ (atomically, as a package
# manager or an admin's editor does) are applied by archy-reconcile.path alone: no command is run
# here between a write and the check of its effect. New apps start healthy, a changed app restarts
# with the change while the others keep their InvocationID, a removed app is stopped and its
# container removed with its data kept, 50 rapid edits converge, an invalid edit leaves the app
# running its last good definition and is reported, and an old orchestrator's Quadlet file is
# moved aside. The apps added here are small nginx containers (the stand-in image).
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh reconcile

source /src/tests/e2e/lib/common.sh

START_WAIT=${ARCHY_E2E_START_WAIT:-90}
ADMIN=/etc/archipelago/apps
HOOK=/usr/libexec/archipelago/archy-hook
GEN=/run/user/1000/systemd/generator
W=${BATS_FILE_TMPDIR:-/tmp}/reconcile
WEB=(web-a web-b web-c web-d web-e)

setup_file() { mkdir -p "$W"; }

# why_reconcile ID: why, and what reconcile said last
why_reconcile() { why "$1"; ujournal -u archy-reconcile.service -n 10 -o cat; }

port_of() { case $1 in web-a) echo 8101 ;; web-b) echo 8102 ;; web-c) echo 8103 ;; web-d) echo 8104 ;; web-e) echo 8105 ;; esac; }

# web ID GREETING [EXTRA]: a small app's manifest (nginx, a data dir, one environment variable)
web() {
  cat <<EOF
[app]
id = "$1"
$3

[image]
ref = "docker.io/nginxinc/nginx-unprivileged:1.29-alpine"

[container]
ports = [{ host = $(port_of "$1"), container = 8080, address = "127.0.0.1" }]
tmpfs = ["/tmp", "/var/cache/nginx"]
read_only = true
environment = { GREETING = "$2" }

[[container.volumes]]
from = "data"
target = "/data"

[health]
cmd = "wget -q -O /dev/null http://127.0.0.1:8080/"
interval = "10s"
start_period = "30s"
EOF
}
# drop ID GREETING [EXTRA]: write the manifest as a package manager does: a temp file, renamed
drop() { web "$@" >"$ADMIN/.$1.toml.new" && mv "$ADMIN/.$1.toml.new" "$ADMIN/$1.toml"; }

inv() { prop "archy-$1.service" InvocationID; }
cid() { upodman inspect -f '{{.Id}}' "archy-$1" 2>/dev/null; }
greeting() { upodman inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "archy-$1" 2>/dev/null | sed -n 's/^GREETING=//p'; }
# running ID GREETING: active, healthy, and its container has that value
running() { is_state "archy-$1.service" active && [ "$(greeting "$1")" = "$2" ] && [ "$(health "archy-$1")" = healthy ]; }
gone() { [ "$(prop "archy-$1.service" LoadState)" = not-found ] && ! upodman container exists "archy-$1"; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# secs_since T0: seconds from T0 (a `now` value) until now
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# what the old orchestrator left in the user's Quadlet dir for bitcoin-ui
legacy() {
  cat <<'EOF'
# written by the old orchestrator
[Unit]
Description=bitcoin-ui (old orchestrator)

[Container]
ContainerName=archy-bitcoin-ui
Image=docker.io/nginxinc/nginx-unprivileged:1.29-alpine
PublishPort=127.0.0.1:8081:8080

[Service]
Restart=always

[Install]
WantedBy=default.target
EOF
}
moved() { [ ! -e "$NODE_QUADLET/archy-bitcoin-ui.container" ] && [ -e "$NODE_QUADLET/archy-bitcoin-ui.container.migrated-by-archy" ]; }

@test "archy-reconcile.path is active: archy.target wants it" {
  uctl show -p Wants --value archy.target | tr ' ' '\n' | grep -qx archy-reconcile.path ||
    fail "archy.target wants: $(uctl show -p Wants --value archy.target)"
  wait_for 30 is_state archy-reconcile.path active || fail "archy-reconcile.path: $(prop archy-reconcile.path ActiveState)"
  for id in bitcoin-core bitcoin-ui; do
    wait_for "$START_WAIT" is_state "archy-$id.service" active || fail "$(why_reconcile "$id")"
  done
  # it applied once when it started with the manager: the boot-started apps have a last good
  # manifest already (an invalid edit of one of them keeps it running: must-show 5)
  wait_for 30 eval "ujournal -u archy-reconcile.service -o cat | grep -q '^reconciled in'" ||
    fail "reconcile did not run at start"
  for id in bitcoin-core bitcoin-ui; do
    [ -s "$NODE_STATE/archipelago/last-good/$id.toml" ] || fail "no last good manifest of $id"
  done
}

@test "must-show 1: a manifest dropped into $ADMIN runs healthy with no command (5 apps)" {
  : >"$W/times"
  for id in "${WEB[@]}"; do
    t0=$(now)
    drop "$id" hello
    wait_for 60 running "$id" hello || fail "$id: $(why_reconcile "$id")"
    dt=$(secs_since "$t0"); echo "$dt" >>"$W/times"
    [ "$(upodman inspect -f '{{index .Config.Labels "archy.app"}}' "archy-$id")" = "$id" ] || fail "$id: label"
    [ "$(prop "archy-$id.service" SourcePath)" = "$GEN/archy-quadlet/archy-$id.container" ] ||
      fail "$id: SourcePath $(prop "archy-$id.service" SourcePath)"
    echo "# $id: manifest written -> archy-$id.service active, healthy: ${dt}s" >&3
  done
  echo "# median manifest-write -> unit-active over ${#WEB[@]} apps: $(median <"$W/times")s (min $(sort -n "$W/times" | head -1), max $(sort -n "$W/times" | tail -1))" >&3
  ujournal -u archy-reconcile.service -o cat | grep '^reconciled in' | tail -n 3 | sed 's/^/# journal: /' >&3
}

@test "must-show 2: changing one app's environment restarts that app alone, with the new value" {
  declare -A before
  for id in bitcoin-core bitcoin-ui "${WEB[@]}"; do before[$id]=$(inv "$id"); done
  old_cid=$(cid web-a)
  t0=$(now)
  drop web-a changed
  wait_for 60 running web-a changed || fail "web-a: GREETING=$(greeting web-a) $(why_reconcile web-a)"
  echo "# web-a GREETING hello -> changed, running again after $(secs_since "$t0")s" >&3
  [ "$(inv web-a)" != "${before[web-a]}" ] || fail "web-a: same InvocationID"
  [ "$(cid web-a)" != "$old_cid" ] || fail "web-a: same container"
  # let any job reconcile queued finish before looking at the others
  wait_for 30 is_state archy-reconcile.service inactive || fail "reconcile still running"
  for id in bitcoin-core bitcoin-ui web-b web-c web-d web-e; do
    [ "$(inv "$id")" = "${before[$id]}" ] || fail "$id was restarted too: InvocationID ${before[$id]} -> $(inv "$id")"
  done
  echo "# InvocationID unchanged: bitcoin-core bitcoin-ui web-b web-c web-d web-e; web-a ${before[web-a]:0:8}.. -> $(inv web-a | cut -c1-8).." >&3
  ujournal -u archy-reconcile.service -o cat | grep -q 'restarting changed apps: archy-web-a.service$' ||
    fail "reconcile did not say it restarted web-a: $(ujournal -u archy-reconcile.service -n 5 -o cat)"
}

@test "must-show 3: removing a manifest stops the app and removes its container, keeping its data" {
  as_node sh -c 'echo kept >/var/lib/archipelago/web-e/precious'
  t0=$(now)
  rm "$ADMIN/web-e.toml"
  wait_for 60 gone web-e || fail "web-e: LoadState $(prop archy-web-e.service LoadState), container $(upodman ps -a --filter name=archy-web-e --format '{{.Status}}')"
  echo "# manifest removed -> unit not-found and container gone: $(secs_since "$t0")s" >&3
  [ "$(cat "$DATA/web-e/precious")" = kept ] || fail "the data dir lost its file"
  ujournal -u archy-reconcile.service -o cat | grep -q 'stopped removed apps: archy-web-e.service' || fail "no journal line"
  echo "# $(ls -ld "$DATA/web-e" | awk '{print $1, $3, $NF}') kept, with $(ls "$DATA/web-e")" >&3
}

@test "must-show 4: 50 rapid edits across several manifests converge on the final manifests" {
  declare -A want
  for id in web-b web-c web-d; do want[$id]=hello; done
  keep_a=$(inv web-a); keep_core=$(inv bitcoin-core)
  apps=(web-b web-c web-d)
  t0=$(now)
  for i in $(seq 1 50); do
    if [ $((i % 10)) = 0 ]; then
      # every tenth edit adds or removes web-e (present after 10, 30, 50)
      if [ $((i % 20)) = 10 ]; then drop web-e "e$i"; want[web-e]=e$i; else rm -f "$ADMIN/web-e.toml"; unset 'want[web-e]'; fi
    else
      id=${apps[$((i % 3))]}; drop "$id" "v$i"; want[$id]=v$i
    fi
    # 0-90 ms apart: edits land during reconcile's passes and the restarts it queued
    sleep "0.0$((RANDOM % 10))"
  done
  writes=$(secs_since "$t0"); t1=$(now)
  converged() {
    local id
    for id in "${!want[@]}"; do running "$id" "${want[$id]}" || return 1; done
    is_state archy-reconcile.service inactive || return 1
    # the set of app units is the set of manifests (archy's own: reconcile, network, the secrets'
    # watchers and the updates' checks, archy-update@<id>.<n>, are not apps)
    [ "$(uctl list-units --all --plain --no-legend 'archy-*.service' | awk '$3 != "not-found" {print $1}' |
         grep -vE '^archy-(reconcile|network|secret@|update@)' | sort | tr '\n' ' ')" = \
      "$(for id in bitcoin-core bitcoin-ui web-a "${!want[@]}"; do echo "archy-$id.service"; done | sort | tr '\n' ' ')" ]
  }
  if ! wait_for 120 converged; then
    for id in "${!want[@]}"; do echo "$id: want ${want[$id]}, has $(greeting "$id") ($(prop "archy-$id.service" ActiveState))"; done
    fail "not converged: $(uctl list-units --all --plain --no-legend 'archy-*'; ujournal -u archy-reconcile.service -n 30 -o cat)"
  fi
  echo "# 50 writes in ${writes}s; converged $(secs_since "$t1")s after the last: $(for id in $(printf '%s\n' "${!want[@]}" | sort); do printf '%s=%s ' "$id" "${want[$id]}"; done)" >&3
  [ "$(inv web-a)" = "$keep_a" ] || fail "web-a (not edited) was restarted"
  [ "$(inv bitcoin-core)" = "$keep_core" ] || fail "bitcoin-core (not edited) was restarted"
  echo "# reconcile runs: $(ujournal -u archy-reconcile.service -o cat --since=@${t0%.*} | grep -c '^reconciled in'), passes: $(ujournal -u archy-reconcile.service -o cat --since=@${t0%.*} | sed -n 's/^reconciled in \([0-9]*\) pass.*/\1/p' | tr '\n' ' ')" >&3
}

@test "must-show 5: an invalid edit leaves the app running unchanged, is reported, and a fix applies" {
  is_state archy-web-a.service active || skip "web-a is not running"
  inv0=$(inv web-a); cid0=$(cid web-a); g0=$(greeting web-a)
  runs0=$(ujournal -u archy-reconcile.service -o cat | grep -c '^reconciled in' || true)
  # an unknown key, and a value that was not there before: nothing of it may reach the app
  drop web-a broken 'colour = "blue"'
  reconciled() { [ "$(ujournal -u archy-reconcile.service -o cat | grep -c '^reconciled in')" -gt "$runs0" ] && is_state archy-reconcile.service inactive; }
  wait_for 30 reconciled || fail "reconcile did not run: $(uctl status --no-pager -n 0 archy-reconcile.path archy-reconcile.service; ujournal -u archy-reconcile.service -n 15 -o cat; ls -la --time-style=full-iso "$ADMIN")"
  [ "$(inv web-a)" = "$inv0" ] || fail "web-a was restarted"
  [ "$(cid web-a)" = "$cid0" ] || fail "web-a's container changed"
  [ "$(greeting web-a)" = "$g0" ] || fail "web-a's environment changed: $(greeting web-a)"
  is_state archy-web-a.service active || fail "$(why_reconcile web-a)"
  [ "$(prop archy-web-a.service SourcePath)" = "$GEN/archy-quadlet/archy-web-a.container" ] ||
    fail "web-a's unit is not its last good definition: $(prop archy-web-a.service SourcePath)"
  grep -q 'GREETING=changed' "$GEN/archy-quadlet/archy-web-a.container" || fail "the generated unit is not the last good one"
  # reported: archy-hook status (as the node user) and the journal
  as_node "$HOOK" status >"$W/status" 2>&1 || fail "archy-hook status: $(cat "$W/status")"
  grep -E '^web-a ' "$W/status" | grep -q 'colour' || fail "status does not show the error: $(cat "$W/status")"
  grep -E '^(APP|web-a) ' "$W/status" | sed 's/^/# status: /' >&3
  ujournal -p err -o cat | grep 'web-a.toml' | grep -q 'colour' || fail "no error in the journal"
  ujournal -p err -o cat | grep 'web-a.toml' | tail -n 1 | sed 's/^/# journal: /' >&3
  # fixing the file applies the fix
  t0=$(now)
  drop web-a fixed
  wait_for 60 running web-a fixed || fail "the fix was not applied: GREETING=$(greeting web-a) $(why_reconcile web-a)"
  echo "# fixed -> running with GREETING=fixed after $(secs_since "$t0")s" >&3
  as_node "$HOOK" status | grep -E '^web-a ' | grep -vq 'colour' || fail "status still shows the error"
}

@test "must-show 6: an old orchestrator's archy-bitcoin-ui.container is moved aside; archy's unit runs" {
  inv_ui=$(inv bitcoin-ui)
  install -d -o node -g node "$NODE_HOME/.config" "$NODE_HOME/.config/containers" "$NODE_QUADLET"
  legacy >"$NODE_QUADLET/archy-bitcoin-ui.container"
  chown node:node "$NODE_QUADLET/archy-bitcoin-ui.container"
  # any manifest change makes reconcile run (here: web-b rewritten as it is)
  t0=$(now)
  web web-b "$(greeting web-b)" >"$ADMIN/.web-b.toml.new" && mv "$ADMIN/.web-b.toml.new" "$ADMIN/web-b.toml"
  wait_for 30 moved || fail "not moved: $(ls -la "$NODE_QUADLET")"
  echo "# moved aside after $(secs_since "$t0")s: $(ls "$NODE_QUADLET" | tr '\n' ' ')" >&3
  wait_for 30 is_state archy-reconcile.service inactive || fail "reconcile still running"
  ujournal -o cat ARCHY_HOOK=reconcile | grep -q "moved the old orchestrator's $NODE_QUADLET/archy-bitcoin-ui.container aside" ||
    fail "not reported: $(ujournal -o cat ARCHY_HOOK=reconcile | tail -n 5)"
  ujournal -o cat ARCHY_HOOK=reconcile | grep "moved the old orchestrator" | sed 's/^/# journal: /' >&3
  # the service that runs is the generated one
  [ "$(prop archy-bitcoin-ui.service SourcePath)" = "$GEN/archy-quadlet/archy-bitcoin-ui.container" ] ||
    fail "SourcePath: $(prop archy-bitcoin-ui.service SourcePath)"
  [ "$(prop archy-bitcoin-ui.service FragmentPath)" = "$GEN/archy-bitcoin-ui.service" ] ||
    fail "FragmentPath: $(prop archy-bitcoin-ui.service FragmentPath)"
  is_state archy-bitcoin-ui.service active || fail "$(why_reconcile bitcoin-ui)"
  want=$(sed -n 's/^Label="archy.digest=\(.*\)"$/\1/p' "$GEN/archy-quadlet/archy-bitcoin-ui.container")
  [ -n "$want" ] && [ "$(upodman inspect -f '{{index .Config.Labels "archy.digest"}}' archy-bitcoin-ui)" = "$want" ] ||
    fail "the container does not run archy's definition"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"method":"uptime"}' http://127.0.0.1:8081/rpc)
  [ "$code" = 200 ] || fail "the UI answers $code"
  echo "# archy-bitcoin-ui.service: SourcePath $(prop archy-bitcoin-ui.service SourcePath), InvocationID $([ "$(inv bitcoin-ui)" = "$inv_ui" ] && echo unchanged || echo changed), UI 200" >&3
}

@test "must-show 6 at boot: a legacy file there when the manager starts is moved aside; archy's unit runs" {
  legacy >"$NODE_QUADLET/archy-bitcoin-ui.container"
  chown node:node "$NODE_QUADLET/archy-bitcoin-ui.container"
  user_manager_down || fail "shutdown"
  t0=$(now)
  user_manager_up || fail "the user manager did not come up"
  # both generators ran with the file there: podman's made a unit of the same name from it
  wait_for 30 moved || fail "not moved: $(ls -la "$NODE_QUADLET")"
  echo "# manager started -> legacy file moved aside: $(secs_since "$t0")s" >&3
  wait_for "$START_WAIT" is_state archy-bitcoin-ui.service active || fail "$(why_reconcile bitcoin-ui)"
  wait_for 30 is_state archy-reconcile.service inactive || fail "reconcile still running"
  [ "$(prop archy-bitcoin-ui.service SourcePath)" = "$GEN/archy-quadlet/archy-bitcoin-ui.container" ] ||
    fail "SourcePath: $(prop archy-bitcoin-ui.service SourcePath)"
  want=$(sed -n 's/^Label="archy.digest=\(.*\)"$/\1/p' "$GEN/archy-quadlet/archy-bitcoin-ui.container")
  runs_archys() { [ "$(upodman inspect -f '{{index .Config.Labels "archy.digest"}}' archy-bitcoin-ui)" = "$want" ] &&
    is_state archy-bitcoin-ui.service active; }
  wait_for "$START_WAIT" runs_archys || fail "the container does not run archy's definition: $(why_reconcile bitcoin-ui)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"method":"uptime"}' http://127.0.0.1:8081/rpc)
  [ "$code" = 200 ] || fail "the UI answers $code"
  echo "# after boot: $(ujournal -o cat ARCHY_HOOK=reconcile | grep '^reconciled in' | tail -n 1); UI 200 after $(secs_since "$t0")s" >&3
}
