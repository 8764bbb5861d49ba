#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core
#
# A leftover container with the app's container name (archy-<id>) exists when its unit starts:
# made but never started (Created), stopped (Exited), frozen (Paused), or running but not the
# unit's. `systemctl --user start` must succeed and replace it (Quadlet's `podman run --replace`):
# a different container ID, the leftover gone, the unit active and the new container healthy.
# The field's failure modes this covers: "podman create" failing on an existing name, containers
# wedged in Created/Paused that nobody recreated.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh wedged

source /src/tests/e2e/lib/common.sh

U=archy-bitcoin-core.service
C=archy-bitcoin-core
IMAGE=docker.io/bitcoin/bitcoin:31.0
WAIT=${ARCHY_E2E_START_WAIT:-90}

setup_file() {
  wait_for "$WAIT" ready bitcoin-core || fail "$(why bitcoin-core)"
}

# leftover STATE: stop the unit (its ExecStop removes its container), then leave a container
# named archy-bitcoin-core in STATE (--init: a sleep as PID 1 would ignore SIGTERM and make every
# replace wait out the 10 s stop timeout); prints its ID
leftover() {
  uctl stop "$U"
  [ -z "$(cid "$C")" ] || fail "the stopped unit left its container behind"
  case $1 in
    created) upodman create --name "$C" "$IMAGE" >/dev/null ;;
    exited) upodman run -d --init --name "$C" --entrypoint '' "$IMAGE" sleep 1000 >/dev/null
      upodman stop -t 0 "$C" >/dev/null ;;
    paused) upodman run -d --init --name "$C" --entrypoint '' "$IMAGE" sleep 1000 >/dev/null
      upodman pause "$C" >/dev/null ;;
    running) upodman run -d --init --name "$C" --entrypoint '' "$IMAGE" sleep 1000 >/dev/null ;;
  esac
  local s; s=$(upodman inspect --format '{{.State.Status}}' "$C")
  [ "$s" = "$1" ] || fail "the leftover is $s, not $1"
  cid "$C"
}

# start_replaces STATE: with such a leftover, the start succeeds and replaces it
start_replaces() {
  old=$(leftover "$1")
  t0=$(now_us)
  run as_node timeout "$WAIT" systemctl --user start "$U"
  [ "$status" = 0 ] || fail "start failed ($status): $output $(why bitcoin-core)"
  ready bitcoin-core || fail "$(why bitcoin-core)"
  new=$(cid "$C")
  [ -n "$new" ] && [ "$new" != "$old" ] || fail "container $new, the leftover was $old"
  ! upodman container exists "$old" || fail "the leftover $old is still there"
  [ "$(upodman ps -a --filter "name=^$C\$" --format '{{.ID}}' | wc -l)" = 1 ] || fail "$(upodman ps -a)"
  note "leftover $1 ${old:0:12} -> start -> active+healthy ${new:0:12} in $(secs "$t0" "$(now_us)")s"
}

@test "a leftover in Created state is replaced at start" { start_replaces created; }
@test "a leftover in Exited state is replaced at start" { start_replaces exited; }
@test "a leftover in Paused state is replaced at start" { start_replaces paused; }
@test "a running container of that name that is not the unit's is replaced at start" { start_replaces running; }

@test "a paused container killed with its unit (conmon too) is cleared, and the unit restarts by itself" {
  # podman keeps such a container "paused" for good: nobody writes its exit file, and both
  # `podman rm -f` and `run --replace` fail on it ("container state improper"); archy-hook
  # leftover writes the exit file conmon would have written
  ready bitcoin-core || wait_for "$WAIT" ready bitcoin-core || fail "$(why bitcoin-core)"
  old=$(cid "$C")
  upodman pause "$C" >/dev/null
  t0=$(now_us)
  uctl kill --signal=KILL "$U"
  wait_for "$WAIT" eval "! upodman container exists $old && ready bitcoin-core" ||
    fail "the paused leftover $old: $(upodman inspect -f '{{.State.Status}}' "$old" 2>&1) $(why bitcoin-core)"
  [ "$(cid "$C")" != "$old" ] || fail "the same container"
  ujournal -o cat ARCHY_HOOK=leftover ARCHY_APP=bitcoin-core | grep -q "removed the leftover container $C (${old:0:12})" ||
    fail "no journal entry of archy-hook leftover: $(ujournal -o cat ARCHY_HOOK=leftover)"
  note "paused, then SIGKILL of the unit -> the leftover ${old:0:12} cleared -> active+healthy in $(secs "$t0" "$(now_us)")s"
}
