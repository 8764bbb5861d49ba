#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# One invalid manifest among good ones: an admin's /etc/archipelago/apps/broken.toml with a
# misspelt key. The good apps keep running undisturbed (same InvocationIDs); archy-broken.service
# exists and fails at start, and `systemctl --user status`, `journalctl --user -u` and
# `archy-hook explain` name the file, the line and the key. After a reboot with the file present
# the good apps come up as always. Fixing the file is all it takes to run the app.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh bad-manifest

source /src/tests/e2e/lib/common.sh

APPS=(bitcoin-core lnd bitcoin-ui)
B=archy-broken.service
WAIT=${ARCHY_E2E_START_WAIT:-90}
W=${BATS_FILE_TMPDIR:-/tmp}

# line 8: the misspelt key
broken_manifest() {
  cat <<'TOML'
[app]
id = "broken"

[image]
ref = "docker.io/bitcoin/bitcoin:31.0"

[container]
comand = ["sleep", "infinity"]
TOML
}
# says_why TEXT: TEXT names the file, the line and the offending key
says_why() {
  [[ $1 == *"/etc/archipelago/apps/broken.toml:8"* ]] || return 1
  [[ $1 == *"comand"* ]]
}

# logged_since T: the unit's journal since T (µs) says why (journald writes the hook's output a
# moment after systemd has seen it exit)
logged_since() { says_why "$(ujournal -u "$B" --since "@$(($1 / 1000000))")"; }

@test "the good apps run" {
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || fail "$(why "$id")"
    echo "$id $(prop "archy-$id.service" InvocationID)"
  done >"$W/invocations"
}

@test "an invalid manifest arrives: the others run undisturbed, archy-broken fails at start" {
  t0=$(now_us)
  broken_manifest | admin_manifest broken
  uctl daemon-reload
  run uctl start archy.target
  [ "$status" = 0 ] || fail "start archy.target: $status $output"
  wait_for 30 is_state "$B" failed || fail "$(uctl status --no-pager "$B")"
  note "manifest written -> archy-broken.service failed in $(secs "$t0" "$(now_us)")s"
  wait_for 10 logged_since "$t0" || fail "the reason is not in the journal"
  [ "$(prop "$B" Result)" = exit-code ] || fail "Result=$(prop "$B" Result)"
  while read -r id inv; do
    ready "$id" || fail "$(why "$id")"
    [ "$(prop "archy-$id.service" InvocationID)" = "$inv" ] || fail "archy-$id.service was restarted"
  done <"$W/invocations"
}

# status_says_why: `systemctl --user status` shows the unit failed, with the reason. Polled:
# archy-reconcile (the manifest write triggered it) starts archy.target again, which re-runs the
# failing unit, and journald writes that run's output a moment after systemd saw it exit.
status_says_why() {
  local out rc=0
  out=$(uctl status --no-pager -n 20 "$B" 2>&1) || rc=$?
  [ "$rc" = 3 ] && [[ $out == *"Active: failed"* ]] && says_why "$out"
}

@test "systemctl --user status archy-broken shows it failed, and why" {
  wait_for 15 status_says_why || fail "$(uctl status --no-pager -n 20 "$B" 2>&1)"
}

@test "journalctl --user -u archy-broken names the file, the line and the key" {
  run ujournal -u "$B"
  says_why "$output" || fail "not in the journal: $output"
}

@test "archy-hook explain broken says why, as the node user" {
  run as_node archy-hook explain broken
  [ "$status" != 0 ] || fail "explain exited 0: $output"
  says_why "$output" || fail "$output"
}

@test "at boot with the invalid manifest present, the good apps come up; archy-broken fails" {
  user_manager_down || fail "shutdown"
  t1=$(now_us)
  user_manager_up || fail "the user manager did not come up"
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || fail "$(why "$id")"
  done
  note "manager started -> the three good apps active+healthy in $(secs "$t1" "$(now_us)")s"
  wait_for 30 is_state "$B" failed || fail "$(uctl status --no-pager "$B")"
  wait_for 10 logged_since "$t1" || fail "not in the journal since the boot: $(ujournal -u "$B" --since "@$((t1 / 1000000))")"
}

@test "fixing the manifest is all it takes: the app runs" {
  t0=$(now_us)
  broken_manifest | sed 's/^comand/command/' | admin_manifest broken
  # archy-reconcile.path: daemon-reload, then archy.target starts what is down
  wait_for 30 is_state "$B" active || fail "$(uctl status --no-pager "$B")"
  note "manifest fixed -> archy-broken.service active in $(secs "$t0" "$(now_us)")s"
  [ "$(upodman inspect --format '{{.State.Status}}' archy-broken)" = running ] || fail "$(why broken)"
}
