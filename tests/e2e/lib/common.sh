# Helpers for scripts that run inside the sandbox (as root; as_node comes from the sandbox).
# Source it: . /src/tests/e2e/lib/common.sh

E2E_T0=${E2E_T0:-$(date +%s.%N)}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# step "what"; ...; pass   - one timed line per step
step() { E2E_STEP=$1; E2E_STEP_T0=$(now); }
pass() { printf '  ok    %-58s %6s\n' "$E2E_STEP" "$(since "$E2E_STEP_T0")" >&2; }
fail() {
  if [ -n "${E2E_STEP:-}" ]; then
    printf '  FAIL  %-58s %6s\n        %s\n' "$E2E_STEP" "$(since "$E2E_STEP_T0")" "$*" >&2
  else
    printf '%s\n' "$*" >&2
  fi
  exit 1
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; non-zero on timeout
wait_for() {
  local deadline; deadline=$(awk -v n="$(now)" -v s="$1" 'BEGIN { printf "%.0f", (n + s) * 10 }'); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(awk -v n="$(now)" 'BEGIN { printf "%.0f", n * 10 }')" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# the user's systemctl/journalctl/podman
uctl() { as_node systemctl --user "$@"; }
ujournal() { as_node journalctl --user --no-pager -q "$@"; }
upodman() { as_node podman "$@"; }

# prop UNIT PROPERTY: one property's value (ActiveState, NRestarts, InvocationID, ...)
prop() { uctl show -p "$2" --value "$1"; }
# health CONTAINER: healthy, unhealthy, starting, or empty
health() { upodman inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null; }
# predicates for wait_for (evaluated on every poll)
is_state() { [ "$(prop "$1" ActiveState)" = "$2" ]; }             # is_state UNIT active
restarts_at_least() { [ "$(prop "$1" NRestarts)" -ge "$2" ]; }     # restarts_at_least UNIT N
is_health() { [ "$(health "$1")" = "$2" ]; }                      # is_health CONTAINER healthy
# ip CONTAINER: its address on the archy network
ip_of() { upodman inspect -f '{{(index .NetworkSettings.Networks "archy").IPAddress}}' "$1"; }

# as the user, with the umask a service would have: write FILE (0600) from stdin
node_write() {
  local f=$1
  install -d -o node -g node -m 700 "$(dirname "$f")"
  (umask 077; cat >"$f"); chown node:node "$f"
}

# the user's XDG dirs (as systemd's %S, %h resolve for the user manager)
NODE_HOME=/home/node
NODE_STATE=$NODE_HOME/.local/state
NODE_QUADLET=$NODE_HOME/.config/containers/systemd
DATA=/var/lib/archipelago

# on failure: what systemd and podman say, for the log
dump_state() {
  echo "---- units ----" >&2; uctl list-units --all --no-pager 'archy*' >&2 || true
  echo "---- containers ----" >&2; upodman ps -a >&2 || true
  echo "---- user journal (last 60) ----" >&2; ujournal -n 60 >&2 || true
}

# why ID: what systemd and podman say about an app, for a failure message
why() {
  uctl status --no-pager -n 15 "archy-$1.service" 2>&1 | head -40
  upodman ps -a --filter "name=archy-$1" --format '{{.Names}} {{.ID}} {{.Status}}'
}

# install_file FILE: put FILE in place atomically (as a package manager or an editor does), from stdin
install_file() { cat >"$1.tmp" && mv "$1.tmp" "$1"; }
# in_ctr ID CMD...: run CMD in the app's container, stdin passed on
in_ctr() { local id=$1; shift; upodman exec -i "archy-$id" "$@"; }
# row ID: the app's line of `archy-hook status`, its columns one space apart
row() { as_node "$HOOK" status | grep "^$1 " | tr -s ' '; }
# lnd_active: lnd says its RPC server is active (wallet unlocked)
lnd_active() { upodman exec archy-lnd lncli state 2>/dev/null | grep SERVER_ACTIVE; }

# note TEXT: a timing or finding in the scenario's output (bats: its fd 3; a plain script: stderr)
note() { if { true >&3; } 2>/dev/null; then echo "# $*" >&3; else echo "# $*" >&2; fi; }

# Times, in microseconds since the epoch, so systemd's and podman's clocks compare.
# ts_us UNIT PROPERTY: a realtime timestamp property (ActiveEnterTimestamp, ...); empty if unset
ts_us() {
  local v; v=$(uctl show --timestamp=us+utc -p "$2" --value "$1")
  [ -z "$v" ] || date -d "$v" +%s%6N
}
# mgr_us PROPERTY: the same for a property of the user manager itself (UserspaceTimestamp, ...)
mgr_us() { date -d "$(uctl show --timestamp=us+utc -p "$1" --value)" +%s%6N; }
# rfc_us TIME: a time as podman prints them: RFC 3339 (health log Start/End) or Go's default
# (.State.StartedAt: "2006-01-02 15:04:05.999999999 +0000 UTC")
rfc_us() { local t=$1; [[ $t != *" "[+-][0-9][0-9][0-9][0-9]" "* ]] || t=${t% *}; date -d "$t" +%s%6N; }
now_us() { date +%s%6N; }
# secs FROM_US TO_US: the seconds between two such times
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }
# first_healthy_us CONTAINER: when podman first found it healthy: the end of the first passing
# check in its health log, or, once that log (the last 5 checks) no longer holds it, the first
# health_status=healthy event of that container (written right after the log)
first_healthy_us() {
  local id log ev
  id=$(cid "$1"); [ -n "$id" ] || return 1
  log=$(upodman inspect --format '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}{{"\n"}}{{end}}{{end}}' "$id" |
    head -n 1)
  [ -z "$log" ] || log=$(rfc_us "$log")
  ev=$(upodman events --stream=false --filter container="$id" --filter event=health_status \
    --format '{{.TimeNano}} {{.HealthStatus}}' | awk '$2 == "healthy" { print $1; exit }')
  [ -z "$ev" ] || ev=$((ev / 1000))
  printf '%s\n' $log $ev | sort -n | head -n 1 | grep .
}
# cid CONTAINER: its full ID, or nothing
cid() { upodman inspect --format '{{.Id}}' "$1" 2>/dev/null; }
# ready ID: the app's unit is active and its container healthy
ready() { is_state "archy-$1.service" active && is_health "archy-$1" healthy; }

# admin_manifest ID: install stdin as /etc/archipelago/apps/ID.toml, the way an admin's editor or
# a package would (a complete file renamed into place; replaces a mask). archy-reconcile.path
# reacts to it; callers that need the unit now also run `uctl daemon-reload`.
admin_manifest() {
  mkdir -p /etc/archipelago/apps
  cat >"/etc/archipelago/.$1.toml.new"
  chmod 644 "/etc/archipelago/.$1.toml.new"
  mv -f "/etc/archipelago/.$1.toml.new" "/etc/archipelago/apps/$1.toml"
}

# A reboot of the node, as far as the user's services see one. The sandbox's PID 1 started the
# user manager in its delegated cgroup; these do what the system manager and logind would.
USER_CG=/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service
SESSION_CG=/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope
manager_pid() { grep -m 1 -vx 0 "$USER_CG/init.scope/cgroup.procs" 2>/dev/null; }   # 0: not in our PID namespace
cg_empty() { [ -z "$(find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -vx 0)" ]; }
# user_manager_down [--crash]: stopping user@1000.service at shutdown: SIGTERM to the manager,
# which stops every unit (podman's ExecStop removes the containers) and exits; then SIGKILL to
# whatever is left (KillMode=mixed) and the runtime dir goes (a tmpfs, removed at logout).
# --crash: a power cut: everything is killed at once, nothing is stopped, containers stay behind
# in podman's storage as they were. Processes are killed one by one: after a write to cgroup.kill
# this kernel went on killing what the next manager started in those cgroups.
user_manager_down() {
  local pid; pid=$(manager_pid)
  [ -n "$pid" ] || { echo "no user manager running" >&2; return 1; }
  if [ "${1:-}" != --crash ]; then
    kill -TERM "$pid"
    wait_for "${ARCHY_E2E_STOP_WAIT:-120}" eval "! kill -0 $pid" || { echo "user manager $pid did not exit" >&2; return 1; }
  fi
  local left
  left=$(find "$USER_CG" "$SESSION_CG" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -vx 0)
  [ -z "$left" ] || kill -KILL $left 2>/dev/null
  wait_for 10 cg_empty "$USER_CG" && wait_for 10 cg_empty "$SESSION_CG" || { echo "processes left in the user's cgroups" >&2; return 1; }
  find /run/user/1000 -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
}
# user_manager_up: start the user manager as the sandbox did, as PID 1 starts user@.service (see
# user_manager in sandbox.sh: its cgroup, $JOURNAL_STREAM, $SYSTEMD_EXEC_PID); its generators run
# (archy-generator renders the units again); returns once it answers and its units are loaded
user_manager_up() {
  user_manager 3>&-   # the sandbox's own way (/etc/archy-e2e.env); bats' fd 3 must not stay open
  disown "$!" 2>/dev/null || true   # no "Killed" from this shell at the next power cut
  local state=
  for _ in $(seq 600); do
    state=$(as_node systemctl --user is-system-running 2>/dev/null || true)
    case $state in starting|running|degraded) break ;; esac
    sleep 0.05
  done
  case $state in starting|running|degraded) ;; *) echo "user manager not up: ${state:-no answer}" >&2; return 1 ;; esac
  uctl start dbus.socket
}

# mempool_pools_offline: the mempool backend's first start needs GitHub's mining pools list (the
# hash of pools-v2.json), which this bed, with no internet, cannot reach: the backend exits, as
# on an offline node. Once it has said so, write the row that first fetch would have written
# (as the mempool user, its password through a file), so that its next start serves.
# SINCE (a journalctl --since value): only what the backend said from then on counts, for a
# database of another network made after an earlier one got its row.
mempool_pools_offline() {
  local wait=${1:-300} since=${2:-}
  asked() { ujournal -u archy-mempool-backend.service ${since:+--since "$since"} -o cat | grep -q 'Failed to retreive pools-v2.json sha'; }
  wait_for "$wait" asked || return 1
  { printf '[client]\npassword='; cat "$NODE_STATE/archipelago/secrets/mempool-db/password"; echo; } |
    upodman exec -i archy-mempool-mariadb sh -c 'umask 077; cat >/tmp/e2e.cnf
      mariadb --defaults-extra-file=/tmp/e2e.cnf -h 127.0.0.1 -u mempool mempool -e "INSERT INTO state VALUES('"'"'pools_json_sha'"'"', NULL, '"'"'archy-e2e-offline'"'"')"
      rc=$?; rm -f /tmp/e2e.cnf; exit $rc'
}
