#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# The node reboots, as the user's services see it: the user manager stops (every unit stopped,
# then whatever is left killed, the runtime dir gone) and starts again, so archy-generator renders
# the units anew and archy.target brings every app back: healthy, new InvocationIDs, new
# containers, lnd and bitcoin-ui again only after bitcoin-core is active. Then a power cut:
# everything killed at once, the containers left behind in podman's storage as they were; after
# boot the units replace them.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh reboot

source /src/tests/e2e/lib/common.sh

APPS=(bitcoin-core lnd bitcoin-ui)
WAIT=${ARCHY_E2E_START_WAIT:-90}
W=${BATS_FILE_TMPDIR:-/tmp}

# remember: each app's InvocationID and container ID, in $W/before
remember() {
  for id in "${APPS[@]}"; do
    echo "$id $(prop "archy-$id.service" InvocationID) $(cid "archy-$id")"
  done >"$W/before"
}
# all_back T0 WHAT: every app is back healthy with a new invocation and a new container; lnd and
# bitcoin-ui began starting only once bitcoin-core was active; prints timings since T0
all_back() {
  local id inv old core began
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || fail "$(why "$id")"
  done
  note "$2: manager started -> all three active+healthy in $(secs "$1" "$(now_us)")s"
  while read -r id inv old; do
    [ "$(prop "archy-$id.service" InvocationID)" != "$inv" ] || fail "archy-$id.service: same InvocationID"
    [ "$(cid "archy-$id")" != "$old" ] || fail "archy-$id: same container"
  done <"$W/before"
  core=$(prop archy-bitcoin-core.service ActiveEnterTimestampMonotonic)
  for id in lnd bitcoin-ui; do
    began=$(prop "archy-$id.service" InactiveExitTimestampMonotonic)
    [ "$began" -ge "$core" ] || fail "archy-$id.service began starting before bitcoin-core was active"
  done
}

@test "the three apps run, healthy" {
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || fail "$(why "$id")"
  done
}

@test "reboot: the user manager stops and starts again; the generator runs again; every app comes back" {
  remember
  t0=$(now_us)
  user_manager_down || fail "shutdown"
  [ ! -e /run/user/1000/systemd/generator/archy-bitcoin-core.service ] || fail "the old units are still there"
  note "reboot: shutdown (units stopped, manager gone) in $(secs "$t0" "$(now_us)")s"
  t1=$(now_us)
  user_manager_up || fail "the user manager did not come up"
  # the runtime dir was empty: these units are the new manager's generators' work
  [ -s /run/user/1000/systemd/generator/archy-quadlet/archy-bitcoin-core.container ] || fail "no units generated"
  [ "$(mgr_us GeneratorsFinishTimestamp)" -gt "$t1" ] || fail "generators did not run at this start"
  all_back "$t1" reboot
}

@test "power cut: everything killed at once; at boot the units replace the containers left behind" {
  remember
  since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  user_manager_down --crash || fail "could not cut the power"
  t1=$(now_us)
  user_manager_up || fail "the user manager did not come up"
  all_back "$t1" "power cut"
  # podman's record: each container that was left behind was removed (by `podman run --replace`)
  while read -r id inv old; do
    ! upodman container exists "$old" || fail "archy-$id: the old container $old is still there"
    [ -n "$(upodman events --stream=false --since "$since" --filter container="$old" --filter event=remove --format '{{.ID}}')" ] ||
      fail "archy-$id: no removal of the container left behind ($old) in podman's events"
    [ "$(upodman ps -a --filter "name=^archy-$id\$" --format '{{.ID}}' | wc -l)" = 1 ] || fail "$(upodman ps -a)"
  done <"$W/before"
}
