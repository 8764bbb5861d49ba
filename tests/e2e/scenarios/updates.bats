#!/usr/bin/env bats
# archy-e2e-apps: none
#
# Issue 14: app updates that roll themselves back. One small app (`web`: the nginx stand-in,
# serving on 127.0.0.1:8110, with a data dir) is updated by writing its manifest, as a package
# manager does; archy-reconcile.path applies each write and nothing here runs a command between
# a write and the check of its effect, but for the rollback by hand (must-show 5). A second app,
# `dep`, requires web: a rollback of web must leave it running.
# The new versions are image tags built here from the stand-in, offline:
#   web:1, web:2, web:6   serve (web:2 and web:6 are other images than web:1, built FROM nginx)
#   web:3-bad             never serves: its health check never passes
#   web:4-migrate         writes "migrated" into /data/db, then never serves
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh updates

source /src/tests/e2e/lib/common.sh

ADMIN=/etc/archipelago/apps
HOOK=/usr/libexec/archipelago/archy-hook
NGINX=docker.io/nginxinc/nginx-unprivileged:1.29-alpine
IMG=localhost/archy-e2e/web
W=${BATS_FILE_TMPDIR:-/tmp}/updates
CTX=/tmp/updates-ctx
DEADLINE=20
GRACE=10

setup_file() { mkdir -p -m 700 "$W"; }

# manifest TAG [UPDATE-KEYS] [SERVICE-KEYS]
manifest() {
  cat <<EOF
[app]
id = "web"

[image]
ref = "$IMG:$1"
pull = "never"

[container]
user = "101:101"
ports = [{ host = 8110, container = 8080, address = "127.0.0.1" }]
tmpfs = ["/tmp", "/var/cache/nginx"]
read_only = true

[[container.volumes]]
from = "data"
target = "/data"

[health]
cmd = "wget -q -O /dev/null http://127.0.0.1:8080/"
interval = "2s"
start_period = "5s"

[service]
stop_timeout = "3s"
$3

[update]
deadline = "${DEADLINE}s"
grace = "${GRACE}s"
$2
EOF
}
drop() { manifest "$@" | install_file "$ADMIN/web.toml"; }
# dep: an app that requires web (Wants= and After=), to show a rollback leaves it running
dep() {
  install_file "$ADMIN/dep.toml" <<EOF
[app]
id = "dep"

[image]
ref = "$NGINX"

[container]
tmpfs = ["/tmp", "/var/cache/nginx"]
read_only = true

[dependencies]
requires = ["web"]

[health]
cmd = "wget -q -O /dev/null http://127.0.0.1:8080/"
interval = "2s"
EOF
}

running_tag() { upodman inspect -f '{{.ImageName}}' archy-web 2>/dev/null | sed 's/.*://'; }
serving() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:8110/)" = 200 ]; }
runs() { [ "$(running_tag)" = "$1" ] && is_state archy-web.service active && serving; }
state_json() { as_node "$HOOK" status --json | grep '"app":"web"'; }
# checksums of every file below the app's db dir, as podman's user namespace reads them
db_sums() { upodman unshare sh -c "cd $DATA/web/db && find . -type f -exec sha256sum {} + | sort"; }
image_there() { upodman image exists "$IMG:$1"; }

# build TAG ENTRYPOINT-JSON: an image FROM the stand-in, with another label (so another image)
build() {
  as_node mkdir -p "$CTX/$1"
  {
    echo "FROM $NGINX"
    echo "LABEL archy.e2e.version=$1"
    [ -z "${2:-}" ] || echo "ENTRYPOINT $2"
  } | as_node tee "$CTX/$1/Containerfile" >/dev/null
  upodman build -q --pull=never -t "$IMG:$1" "$CTX/$1" >/dev/null
}

@test "the versions are built, and web:1 runs with data in its data dir" {
  upodman tag "$NGINX" "$IMG:1"
  build 2
  build 6
  build 3-bad '["/bin/sh", "-c", "exec sleep 3600"]'
  build 4-migrate '["/bin/sh", "-c", "echo migrated >/data/db/state; echo migrated >/data/db/new; exec sleep 3600"]'
  drop 1
  wait_for 120 runs 1 || fail "web:1 does not run: $(why web)"
  dep
  wait_for 60 is_state archy-dep.service active || fail "dep does not run: $(why dep)"
  upodman exec archy-web sh -c 'mkdir -p /data/db && echo v1 >/data/db/state && seq 1 1000 >/data/db/rows'
  db_sums >"$W/before"
  [ -s "$W/before" ] || fail "no data written"
}

@test "must-show 1: a good update is applied, healthy, and the old image goes only after the grace period" {
  t0=$(now)
  drop 2
  wait_for 90 runs 2 || fail "web:2 does not run: $(why web)"
  note "update web:1 -> web:2: healthy and serving after $(since "$t0")"
  image_there 1 || fail "web:1 was removed before the grace period ended"
  state_json | grep -q '"previous":"'"$IMG"':1"' || fail "status: $(state_json)"
  as_node "$HOOK" status | grep '^web ' | tr -s ' ' | grep -q ' 2 1 ' || fail "table: $(as_node "$HOOK" status)"
  gone() { ! image_there 1; }
  wait_for $((DEADLINE + GRACE + 15)) gone || fail "web:1 still there after the grace: $(ujournal ARCHY_APP=web -o cat | tail -5)"
  note "web:1 removed after $(since "$t0") (deadline ${DEADLINE}s, grace ${GRACE}s)"
  ujournal ARCHY_HOOK=update-check ARCHY_APP=web -o cat | grep -q 'kept the update of app `web`' ||
    fail "journal: $(ujournal ARCHY_APP=web -o cat | tail -5)"
  runs 2 || fail "web:2 stopped running"
}

@test "must-show 2: a bad update is rolled back within its deadline, serves on its old data, and is not retried" {
  inv_before=$(prop archy-web.service InvocationID)
  dep_inv=$(prop archy-dep.service InvocationID)
  t0=$(now)
  drop 3-bad
  started() { [ "$(running_tag)" = 3-bad ]; }
  wait_for 60 started || fail "web:3-bad never started: $(why web)"
  wait_for $((DEADLINE + 30)) runs 2 || fail "not rolled back to web:2: $(why web) $(ujournal ARCHY_APP=web -o cat | tail -5)"
  took=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  note "bad update web:3-bad -> back on web:2 and serving after ${took}s (deadline ${DEADLINE}s)"
  awk -v t="$took" -v d="$DEADLINE" 'BEGIN { exit !(t <= d + 15) }' || fail "rollback took ${took}s"
  db_sums | diff - "$W/before" || fail "the data changed"
  # its dependent was not taken down with it
  is_state archy-dep.service active || fail "dep: $(why dep)"
  [ "$(prop archy-dep.service InvocationID)" = "$dep_inv" ] || fail "dep restarted"
  state_json | grep -q '"manifest":"rolled-back"' || fail "status: $(state_json)"
  state_json | grep -q "rolled back from $IMG:3-bad to $IMG:2: not healthy within ${DEADLINE}s" || fail "status: $(state_json)"
  ujournal ARCHY_APP=web -p err -o cat | grep -q "rolled back app \`web\` from $IMG:3-bad to $IMG:2" ||
    fail "journal: $(ujournal ARCHY_APP=web -o cat | tail -5)"
  # the bad manifest stays in place: not tried again
  inv=$(prop archy-web.service InvocationID)
  [ "$inv" != "$inv_before" ] || fail "the unit never restarted"
  sleep $((DEADLINE + 10))
  [ "$(prop archy-web.service InvocationID)" = "$inv" ] || fail "restarted again: $(why web)"
  runs 2 || fail "no longer on web:2"
  [ "$(ujournal ARCHY_APP=web -o cat | grep -c 'updating app `web` from .* to '"$IMG"':3-bad')" = 1 ] ||
    fail "the bad version was tried more than once"
  note "$((DEADLINE + 10))s later: same invocation, still web:2; status: $(as_node "$HOOK" status | grep '^web ' | tr -s ' ' | cut -c1-200)"
}

@test "must-show 3: a non-reversible app is snapshotted, the migrating version fails, and the data is restored exactly" {
  t0=$(now)
  drop 4-migrate 'reversible = false
snapshot = ["db"]'
  migrated() { upodman unshare grep -q migrated "$DATA/web/db/state"; }
  wait_for 60 migrated || fail "web:4-migrate never wrote its data: $(why web)"
  [ -d "$DATA/web.snapshot/db" ] || fail "no snapshot at $DATA/web.snapshot"
  upodman unshare diff -r "$DATA/web.snapshot/db" "$DATA/web/db" >/dev/null && fail "the snapshot is the migrated data"
  wait_for $((DEADLINE + 30)) runs 2 || fail "not rolled back: $(why web) $(ujournal ARCHY_APP=web -o cat | tail -5)"
  note "migrating update -> restored and serving on web:2 after $(since "$t0")"
  db_sums | diff - "$W/before" || fail "the data is not what it was before the update"
  ! upodman unshare test -e "$DATA/web/db/new" || fail "a file the new version made is still there"
  [ ! -e "$DATA/web.snapshot" ] || fail "the snapshot was left behind"
  note "checksums of $(wc -l <"$W/before") files equal to before the update"
}

@test "must-show 4: an update whose snapshot does not fit is refused before anything is stopped" {
  cid=$(upodman inspect -f '{{.Id}}' archy-web)
  inv=$(prop archy-web.service InvocationID)
  free=$(df -B1 --output=avail "$DATA" | tail -1 | tr -d ' ')
  reserve=$((free / 1048576 + 1024))M   # 1 GiB more than is free
  drop 6 'reversible = false
snapshot = ["db"]' "disk_reserve = \"$reserve\""
  refused() { state_json | grep -q "update to $IMG:6 refused, running $IMG:2: not enough disk for the data snapshot"; }
  wait_for 60 refused || fail "status: $(state_json) $(ujournal -u archy-reconcile.service -o cat | tail -5)"
  [ "$(upodman inspect -f '{{.Id}}' archy-web)" = "$cid" ] || fail "the container was replaced"
  [ "$(prop archy-web.service InvocationID)" = "$inv" ] || fail "the unit restarted"
  runs 2 || fail "web:2 stopped"
  note "refused: $(state_json | sed 's/.*"error":"\([^"]*\)".*/\1/')"
}

@test "must-show 5: archy-hook rollback by hand returns a healthy update to its previous version" {
  drop 6
  wait_for 90 runs 6 || fail "web:6 does not run: $(why web)"
  t0=$(now)
  as_node "$HOOK" rollback web || fail "rollback failed"
  wait_for 60 runs 2 || fail "not back on web:2: $(why web)"
  note "rollback by hand: web:6 -> web:2 serving after $(since "$t0")"
  state_json | grep -q "rolled back from $IMG:6 to $IMG:2: rolled back by hand" || fail "status: $(state_json)"
  db_sums | diff - "$W/before" || fail "the data changed"
}
