#!/usr/bin/env bats
# archy-e2e-apps: none
#
# App containment, the hooks' side (issue 11): a container's files are untrusted. `sharer`
# shares two directories ([app] shares) and its container plants, before its health check
# passes, a symbolic link to the service user's secrets dir where the first should be, and a
# FIFO where the second should be and where its [[backup]] file should be. Apps requiring it and
# mounting those shared directories are refused at start by `archy-hook volumes`, naming the
# path, and nothing outside their own directories is created or changed (the `mkdir -p` this
# replaced made the directory inside the secrets dir and mounted the secrets into the app). The
# backup hook meets the FIFO, does not block, and says so. The apps are small containers of the
# nginx stand-in image running a shell.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh containment

source /src/tests/e2e/lib/common.sh

HOOK=/usr/libexec/archipelago/archy-hook
WAIT=${ARCHY_E2E_START_WAIT:-90}
SECRETS=$NODE_STATE/archipelago/secrets
W=${BATS_FILE_TMPDIR:-/root}/containment

setup_file() { mkdir -p -m 700 "$W"; }

# the planting app: root in its container is the service user, which owns its data dir
sharer() {
  cat <<EOF
[app]
id = "sharer"
shares = ["pub", "fifo"]

[image]
ref = "docker.io/nginxinc/nginx-unprivileged:1.29-alpine"

[container]
user = "0:0"
entrypoint = ["/bin/sh", "-c", "rm -rf /data/pub /data/fifo /data/b && ln -s $SECRETS /data/pub && busybox mkfifo /data/fifo && mkdir /data/b && busybox mkfifo /data/b/db && exec sleep 100000"]

[[container.volumes]]
target = "/data"

[secrets]
sharer-pw = "password"

[[backup]]
name = "db"
path = "b/db"

[health]
cmd = "test -p /data/b/db"
interval = "2s"
start_period = "30s"

[service]
stop_timeout = "2s"
EOF
}

# taker ID SUBPATH: an app mounting sharer's SUBPATH
taker() {
  cat <<EOF
[app]
id = "$1"

[image]
ref = "docker.io/nginxinc/nginx-unprivileged:1.29-alpine"

[container]
user = "0:0"
entrypoint = ["/bin/sh", "-c", "exec sleep 100000"]

[[container.volumes]]
app = "sharer"
subpath = "$2"
target = "/shared"

[dependencies]
requires = ["sharer"]

[service]
stop_timeout = "2s"
EOF
}

# what a refusal must leave as it was: the secrets dir and its entries (mode, mtime, inode),
# and sharer's data dir
looks() { find "$SECRETS" "$DATA/sharer" -printf '%p %y %m %T@ %i\n' 2>/dev/null | sort; }
refused() { ujournal ARCHY_APP="$1" ARCHY_HOOK=volumes -o cat | grep -qF "$2"; }

@test "a link a container planted in a shared directory is refused, not followed" {
  sharer | admin_manifest sharer
  wait_for "$WAIT" ready sharer || fail "sharer not ready: $(why sharer)"
  [ -L "$DATA/sharer/pub" ] && [ "$(readlink "$DATA/sharer/pub")" = "$SECRETS" ] || fail "no link planted: $(ls -l "$DATA/sharer")"
  [ -f "$SECRETS/sharer-pw/password" ] || fail "no secret to protect: $(ls -lR "$SECRETS")"
  looks >"$W/before"
  t0=$(now)
  taker taker "pub/x" | admin_manifest taker
  msg="$DATA/sharer/pub is a symbolic link, not a directory: not following it"
  wait_for "$WAIT" refused taker "$msg" || fail "no refusal: $(ujournal ARCHY_APP=taker -o cat | tail -5) $(why taker)"
  t=$(since "$t0")
  # the unit's own journal says why, naming the volume, the app and the path
  ujournal -u archy-taker.service -o cat | grep -F "volume \`/shared\` of app \`taker\`" | grep -qF "$msg" ||
    fail "not in the unit's journal: $(ujournal -u archy-taker.service -o cat | tail -5)"
  ! upodman container exists archy-taker || fail "the container was created: $(upodman inspect -f '{{.Mounts}}' archy-taker)"
  [ "$(prop archy-taker.service ActiveState)" != active ] || fail "taker is active"
  [ ! -e "$SECRETS/x" ] || fail "created $SECRETS/x through the link"
  looks >"$W/after"
  diff "$W/before" "$W/after" >"$W/diff" || fail "changed outside taker's dirs: $(cat "$W/diff")"
  note "refused ${t} after its manifest came: $(ujournal ARCHY_APP=taker ARCHY_HOOK=volumes -o cat | head -1 | cut -c1-200)"
  note "secrets dir and sharer's data: $(wc -l <"$W/after") entries, modes, mtimes and inodes unchanged; no container"
}

@test "a FIFO where a shared directory should be is refused without blocking" {
  ready sharer || fail "sharer not ready: $(why sharer)"
  [ -p "$DATA/sharer/fifo" ] || fail "no FIFO planted: $(ls -l "$DATA/sharer")"
  looks >"$W/before"
  t0=$(now)
  taker fifo-taker "fifo" | admin_manifest fifo-taker
  msg="$DATA/sharer/fifo is a FIFO, not a directory: refused"
  wait_for "$WAIT" refused fifo-taker "$msg" || fail "no refusal: $(ujournal ARCHY_APP=fifo-taker -o cat | tail -5) $(why fifo-taker)"
  t=$(since "$t0")
  ! upodman container exists archy-fifo-taker || fail "the container was created"
  looks >"$W/after"
  diff "$W/before" "$W/after" >"$W/diff" || fail "changed: $(cat "$W/diff")"
  # run by hand too: it returns at once
  s=$(now) rc=0
  as_node timeout 20 "$HOOK" volumes fifo-taker >"$W/out" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "exit status $rc (124: it blocked): $(cat "$W/out")"
  grep -qF "$msg" "$W/out" || fail "$(cat "$W/out")"
  note "refused ${t} after its manifest came; by hand in $(since "$s")"
}

@test "the backup hook meets a FIFO where the app's file should be: it does not block, and says so" {
  ready sharer || fail "sharer not ready: $(why sharer)"
  u=archy-sharer-backup-db.service
  [ -p "$DATA/sharer/b/db" ] || fail "no FIFO planted"
  [ "$(prop "$u" TimeoutStartUSec)" = 2min ] || fail "TimeoutStartUSec=$(prop "$u" TimeoutStartUSec)"
  t0=$(now_us)
  rc=0; as_node timeout 60 systemctl --user start "$u" 2>/dev/null || rc=$?
  [ "$rc" = 1 ] || fail "systemctl start: exit status $rc (124: it blocked)"
  t=$(secs "$t0" "$(now_us)")
  awk -v t="$t" 'BEGIN { exit !(t < 10) }' || fail "took ${t}s"
  [ "$(prop "$u" Result)" = exit-code ] || fail "Result=$(prop "$u" Result)"
  ujournal ARCHY_APP=sharer ARCHY_HOOK=backup -o cat | grep -qF "$DATA/sharer/b/db is a FIFO, not a regular file" ||
    fail "$(ujournal ARCHY_APP=sharer ARCHY_HOOK=backup -o cat | tail -3)"
  [ ! -e "$DATA/backups/sharer/db/db" ] || fail "a copy was made"
  note "the backup unit failed in ${t}s (its timeout: 2min): $(ujournal ARCHY_APP=sharer ARCHY_HOOK=backup -o cat | tail -1 | cut -c1-160)"
}
