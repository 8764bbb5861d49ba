#!/usr/bin/env bats
# archy-e2e-apps: none
#
# An app whose process exits at once: bitcoin-core with the stand-in's `standin-exit` file in its
# data dir (bitcoind exits 1 at start), and an admin copy of its manifest with a short restart
# delay (100ms growing to 8s; the catalog's 5s -> 5min would take an hour to show). systemd must
# retry it with growing delays (in its journal, the waits from a failed attempt to the next restart
# job grow, and with them the gaps between start jobs; so does RestartUSecNext), never give up with "start request repeated too quickly" (more starts within
# 10 s than systemd's default StartLimitBurst=5 allows, and the unit is not failed), and bring
# the app up by itself once the fault is gone.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh crash-loop

source /src/tests/e2e/lib/common.sh

U=archy-bitcoin-core.service
DIR=$DATA/bitcoin-core
STARTS=${ARCHY_E2E_CRASH_STARTS:-10}
W=${BATS_FILE_TMPDIR:-/tmp}
# at MESSAGE_ID: when systemd logged that message about the unit (µs, monotonic), from its journal
at() {
  ujournal -u "$U" MESSAGE_ID="$1" -o json --output-fields=MESSAGE_ID |
    grep -o '"__MONOTONIC_TIMESTAMP":"[0-9]*"' | grep -o '[0-9][0-9]*'
}
STARTING=7d4958e842da4a758f6c1cdc7b36dcc5   # "Starting ...": a start job begins
FAILED=d9b373ed55a64feb8242e02dbe79a49c     # "Failed with result ...": an attempt ended
RESTART=5eb03494b6584870a536b337290809b3    # "Scheduled restart job, restart counter is at N"

setup_file() {
  install -d -o node -g node "$DIR"
  as_node touch "$DIR/standin-exit"
  sed '/^\[service\]/a restart_delay = "100ms"\nrestart_max_delay = "8s"' \
    /usr/share/archipelago/apps/bitcoin-core.toml | admin_manifest bitcoin-core
  uctl daemon-reload
  uctl start --no-block "$U"
}

@test "the crashing app is retried with growing delays and never gives up" {
  grep -q '^restart_delay = "100ms"' /etc/archipelago/apps/bitcoin-core.toml || fail "override not installed"
  [ "$(prop "$U" RestartUSec)" = 100ms ] || fail "RestartSec: $(prop "$U" RestartUSec)"
  # sample systemd's state every 0.1 s until STARTS starts: the unit is never `failed`; the
  # delays it schedules (RestartUSecNext)
  seen=" " delays=" " t0=$(now_us)
  while :; do
    declare -A p=()
    while IFS='=' read -r k v; do p[$k]=$v; done < <(uctl show "$U" -p NRestarts,ActiveState,SubState,Result,RestartUSecNext)
    [ "${p[ActiveState]}" != failed ] || fail "failed (Result=${p[Result]}) after ${p[NRestarts]} restarts: $(why bitcoin-core)"
    case $seen in *" ${p[ActiveState]}/${p[SubState]} "*) ;; *) seen="$seen${p[ActiveState]}/${p[SubState]} " ;; esac
    case $delays in *" ${p[RestartUSecNext]} "*) ;; *) delays="$delays${p[RestartUSecNext]} " ;; esac
    [ "${p[NRestarts]}" -lt $((STARTS - 1)) ] || break
    [ "$(now_us)" -lt $((t0 + 90000000)) ] || fail "only ${p[NRestarts]} restarts in 90 s: $(why bitcoin-core)"
    sleep 0.1
  done
  # systemd's own record in the journal: each start job, each failed attempt, each restart. These
  # are the manager's structured entries (MESSAGE_ID, USER_UNIT), there only if it logs to the
  # journal natively, as one that PID 1 started does (see user_manager in sandbox.sh)
  [ -n "$(at $STARTING)" ] ||
    fail "no entry with MESSAGE_ID=$STARTING in $U's journal: the user manager does not log to the journal natively? its last lines: $(ujournal -t systemd -n 5 -o cat)"
  wait_for 10 eval '[ "$(at $RESTART | wc -l)" -ge $((STARTS - 1)) ]' || fail "the journal has $(at $RESTART | wc -l) restarts"
  at $STARTING | head -n "$STARTS" >"$W/starts"
  # the wait systemd put in before each restart: from the end of an attempt to the restart job
  paste -d ' ' <(at $FAILED | head -n $((STARTS - 1))) <(at $RESTART | head -n $((STARTS - 1))) >"$W/waits"
  gaps=$(awk 'NR > 1 { printf "%.2f ", ($1 - p) / 1e6 } { p = $1 }' "$W/starts")
  waits=$(awk '{ printf "%.2f ", ($2 - $1) / 1e6 }' "$W/waits")
  note "$STARTS starts in $(secs "$(head -n1 "$W/starts")" "$(tail -n1 "$W/starts")")s; gaps between starts (s): $gaps"
  note "waits from a failed attempt to its restart (s): $waits"
  note "RestartUSecNext seen:${delays% }"
  note "unit states seen:${seen% }"
  # the waits grow: the last is over 5 times the first, none shrinks by more than jitter; so
  # do the gaps between starts, which add each attempt's own time
  tr ' ' '\n' <<<"$waits" | sed '/^$/d' | awk '{ g[NR] = $1 }
    END { if (NR < 2 || g[NR] < 5 * g[1]) exit 1; for (i = 2; i <= NR; i++) if (g[i] < g[i-1] - 0.3) exit 1 }' ||
    fail "the waits do not grow: $waits"
  # (against the shortest of the first three: the very first attempt also creates the app's
  # secrets, configs and dirs, and may take a second longer than the ones after it)
  tr ' ' '\n' <<<"$gaps" | sed '/^$/d' | awk '{ g[NR] = $1 }
    END { m = g[1]; for (i = 2; i <= 3 && i <= NR; i++) if (g[i] < m) m = g[i]; if (g[NR] < 2 * m) exit 1 }' ||
    fail "the gaps between starts do not grow: $gaps"
  # and each wait is at least systemd's backoff for that restart: RestartSec=100ms growing to
  # RestartMaxDelaySec=8s over RestartSteps=10, 100ms * 80^((n-1)/10) for restart n. The
  # journal's times are when journald received each message, not when systemd sent it: a busy
  # journald shortens a gap by up to a few tens of ms (0.09 s for the first 100 ms wait seen in
  # CI), hence 0.03 s of slack, well under the 55 ms between the first two steps
  tr ' ' '\n' <<<"$waits" | sed '/^$/d' | awk '{ if ($1 < 0.1 * 80 ^ ((NR - 1) / 10) - 0.03) { print NR; exit 1 } }' ||
    fail "a wait is shorter than systemd's backoff: $waits"
  # more starts within some 10 s than the default start limit (5 per 10 s) allows: without
  # StartLimitIntervalSec=0 the unit would be failed with Result=start-limit-hit by now
  most=$(awk '{ t[NR] = $1 } END { for (i = 1; i <= NR; i++) { c = 0; for (j = i; j <= NR && t[j] - t[i] <= 10e6; j++) c++; if (c > m) m = c } print m }' "$W/starts")
  note "most starts within 10 s: $most (systemd's default StartLimitBurst is 5)"
  [ "$most" -gt 5 ] || fail "the test did not exceed the default start limit (at most $most starts in 10 s)"
  [ "$(prop "$U" ActiveState)" = activating ] || fail "unit $(prop "$U" ActiveState)/$(prop "$U" SubState)"
  [ "$(prop "$U" Result)" != start-limit-hit ] || fail "start-limit-hit"
}

@test "once the fault is gone, the next retry brings it up: nobody resets or starts anything" {
  t0=$(now_us); n=$(prop "$U" NRestarts)
  rm "$DIR/standin-exit"
  wait_for 30 ready bitcoin-core || fail "$(why bitcoin-core)"
  note "fault removed (NRestarts $n, next delay $(prop "$U" RestartUSecNext)) -> active+healthy $(secs "$t0" "$(now_us)")s, NRestarts $(prop "$U" NRestarts)"
}
