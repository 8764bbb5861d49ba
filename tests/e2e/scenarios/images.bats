#!/usr/bin/env bats
# archy-e2e-apps: none
#
# Issue 4, must-show 4: `archy-hook ensure-image` (an ExecStartPre= of every app) builds a missing
# image from the app's local build context and the app starts, healthy; an image that is missing
# and would have to come from a registry node.toml does not allow makes the unit fail with a
# message naming the image. (No catalog app is needed: `none` masks them all.)
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh images

source /src/tests/e2e/lib/common.sh

BUILD=/usr/share/archipelago/build
ADMIN=/etc/archipelago/apps
BUILT=localhost/archy-e2e/hello:1
REMOTE=quay.io/nobody/nothing:1


@test "node.toml allows no registry, and the images are not there yet" {
  grep -q '^allowed = \[\]' /etc/archipelago/node.toml || fail "node.toml: $(grep allowed /etc/archipelago/node.toml)"
  ! upodman image exists "$BUILT" || fail "$BUILT exists before the test"
  ! upodman image exists "$REMOTE" || fail "$REMOTE exists before the test"
}

@test "a missing image with a local build context is built by ensure-image, and the app starts healthy" {
  mkdir -p "$BUILD/hello"
  # FROM an image the node has (the stand-in nginx); no RUN: the sandbox has no network
  printf '%s\n' 'FROM docker.io/nginxinc/nginx-unprivileged:1.29-alpine' \
    'COPY index.html /usr/share/nginx/html/index.html' >"$BUILD/hello/Containerfile"
  echo 'hello from a local build' >"$BUILD/hello/index.html"
  install_file "$ADMIN/hello.toml" <<'EOF'
[app]
id = "hello"

[image]
ref = "localhost/archy-e2e/hello:1"
build = "hello"

[container]
ports = [{ host = 8090, container = 8080, address = "127.0.0.1" }]
tmpfs = ["/tmp", "/var/cache/nginx"]
read_only = true

[health]
cmd = "wget -q -O /dev/null http://127.0.0.1:8080/"
interval = "10s"
start_period = "30s"
EOF
  t0=$(now)
  uctl daemon-reload
  uctl start --no-block archy-hello.service
  wait_for 120 is_state archy-hello.service active || fail "$(why hello)"
  echo "# manifest + build context -> archy-hello.service active: $(since "$t0") (build included)" >&3
  upodman image exists "$BUILT" || fail "no image $BUILT"
  [ "$(health archy-hello)" = healthy ] || fail "health: $(health archy-hello)"
  image=$(upodman inspect -f '{{.Image}}' archy-hello)
  [ "$image" = "$(upodman image inspect -f '{{.Id}}' "$BUILT")" ] || fail "the container runs $image, not $BUILT"
  [ "$(upodman inspect -f '{{index .Config.Labels "archy.app"}}' archy-hello)" = hello ] || fail "label archy.app"
  [ "$(curl -s --max-time 5 http://127.0.0.1:8090/)" = 'hello from a local build' ] || fail "not the built content"
  ujournal -u archy-hello.service ARCHY_HOOK=ensure-image -o cat | grep -qF "building $BUILT from $BUILD/hello" ||
    fail "no journal line of the build: $(ujournal -u archy-hello.service -n 20)"
  echo "# image $BUILT $(upodman image inspect -f '{{.Id}}' "$BUILT" | cut -c1-12), container $(upodman inspect -f '{{.Id}}' archy-hello | cut -c1-12) $(health archy-hello), NRestarts $(prop archy-hello.service NRestarts)" >&3
}

@test "a present image is not built again: the restart reuses it" {
  is_state archy-hello.service active || skip "hello is not running"
  id=$(upodman image inspect -f '{{.Id}}' "$BUILT")
  t0=$(now)
  uctl restart archy-hello.service
  is_state archy-hello.service active || fail "$(why hello)"
  echo "# restart with the image present: $(since "$t0")" >&3
  [ "$(upodman image inspect -f '{{.Id}}' "$BUILT")" = "$id" ] || fail "the image was rebuilt"
  [ "$(ujournal -u archy-hello.service ARCHY_HOOK=ensure-image -o cat | grep -c 'building ')" = 1 ] || fail "built twice"
}

@test "an image from a registry node.toml does not allow: the unit fails naming the image" {
  install_file "$ADMIN/nowhere.toml" <<EOF
[app]
id = "nowhere"

[image]
ref = "$REMOTE"

[health]
cmd = "true"
EOF
  uctl daemon-reload
  t0=$(now)
  uctl start archy-nowhere.service && fail "archy-nowhere.service started"
  echo "# start -> failed: $(since "$t0")" >&3
  # the unit goes on failing (Restart=), and reconcile (archy-reconcile.path saw the new manifest)
  # may be starting archy.target, which wants it, at the same moment: a start under way shows
  # Result=success until it fails again, so the failure is waited for, not read once
  failed() { [ "$(prop archy-nowhere.service Result)" = exit-code ]; }
  wait_for 10 failed || fail "Result=$(prop archy-nowhere.service Result) $(prop archy-nowhere.service ActiveState)"
  ! upodman image exists "$REMOTE" || fail "the image is there"
  [ -z "$(upodman ps -aq --filter name=archy-nowhere)" ] || fail "a container was created"
  status=$(uctl status --no-pager -n 20 archy-nowhere.service 2>&1 || true)
  grep -q "ensure-image nowhere (code=exited, status=1/FAILURE)" <<<"$status" || fail "status: $status"
  # the reason, in status's own words (Status: from the hook; its log lines are not shown there
  # while the unit waits to restart)
  grep -qF "Status: \"archy-hook ensure-image: image $REMOTE is not present, and its registry quay.io is not allowed" <<<"$status" ||
    fail "status: $status"
  journal=$(ujournal -u archy-nowhere.service -o cat)
  grep -qF "$REMOTE" <<<"$journal" || fail "journal: $journal"
  grep -F "$REMOTE" <<<"$journal" | head -n 1 | sed 's/^/# journal: /' >&3
  grep -E '^ *(Active|Process|Status):' <<<"$status" | sed 's/^/# status: /' >&3
  echo "# ActiveState=$(prop archy-nowhere.service ActiveState) SubState=$(prop archy-nowhere.service SubState) Result=$(prop archy-nowhere.service Result) NRestarts=$(prop archy-nowhere.service NRestarts)" >&3
  # the other app is untouched
  is_state archy-hello.service active || fail "hello: $(why hello)"
}
