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
