#!/usr/bin/env bats
# archy-e2e-apps: bitcoin-core lnd lnd-ui
#
# Lightning without a human (issue 10): on a fresh node lnd's wallet is created by its [[init]]
# step (archy-hook init: lnd without a chain backend, REST genseed + initwallet, the password an
# archy secret) and lnd unlocks itself at every start (wallet-unlock-password-file). The seed is
# kept 0600 for the operator, shown once at a terminal, and found nowhere else: not in a unit,
# `systemctl show`, a process, `podman inspect` or the journal. A kill, a user-manager restart
# and a rotation of bitcoind's password each end with lnd SERVER_ACTIVE again; while bitcoind
# syncs lnd waits, is not restarted, and `archy-hook status` says so; removing and reinstalling
# the app keeps the same wallet.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh lnd-wallet

source /src/tests/e2e/lib/common.sh

HOOK=/usr/libexec/archipelago/archy-hook
WAIT=${ARCHY_E2E_START_WAIT:-120}
HOLD=${ARCHY_E2E_SYNC_HOLD:-70}
LND=$DATA/lnd
SEED=$NODE_STATE/archipelago/lnd/init/wallet
PASSWORD=$NODE_STATE/archipelago/secrets/lnd-wallet/password
W=${BATS_FILE_TMPDIR:-/root}/lnd-wallet

setup_file() { mkdir -p -m 700 "$W"; }

lnd_state() { upodman exec archy-lnd lncli state 2>/dev/null | sed -n 's/.*"state": *"\([A-Z_]*\)".*/\1/p'; }
serving() { [ "$(lnd_state)" = SERVER_ACTIVE ] && ready lnd; }
identity() { upodman exec archy-lnd lncli getinfo | sed -n 's/.*"identity_pubkey": *"\([0-9a-f]*\)".*/\1/p'; }
# seconds from $1 (microseconds) until lnd serves again
serve_secs() { wait_for "$WAIT" serving || fail "lnd does not serve: $(why lnd)"; secs "$1" "$(now_us)"; }

@test "must-show 1: a fresh node's lnd creates its wallet and serves, with no command from anyone" {
  wait_for "$WAIT" serving || fail "lnd does not serve: $(why lnd) $(ujournal -u archy-lnd.service -o cat | tail -20)"
  t=$(secs "$(mgr_us UserspaceTimestamp)" "$(first_healthy_us archy-lnd)")
  [ -f "$LND/data/chain/bitcoin/mainnet/wallet.db" ] || fail "no wallet.db"
  [ "$(stat -c %a "$SEED")" = 600 ] || fail "seed file mode $(stat -c %a "$SEED")"
  [ "$(stat -c %a "${SEED%/*}")" = 700 ] || fail "seed dir mode $(stat -c %a "${SEED%/*}")"
  [ "$(grep -cE '^ ?[0-9]+\. [a-z]+$' "$SEED")" = 24 ] || fail "seed file: $(grep -cE '^ ?[0-9]+\. [a-z]+$' "$SEED") numbered words"
  [ "$(stat -c %a "$PASSWORD")" = 600 ] || fail "password mode $(stat -c %a "$PASSWORD")"
  ujournal ARCHY_HOOK=init ARCHY_APP=lnd -o cat | grep -q "init step \`wallet\` done; its output is kept in" ||
    fail "no journal entry of the init step: $(ujournal ARCHY_HOOK=init -o cat)"
  identity >"$W/identity"; [ -s "$W/identity" ] || fail "no identity"
  ujournal -u archy-lnd.service -o cat | grep -q 'create-wallet: wallet created for mainnet' ||
    fail "the step's stderr is not in the unit's journal: $(journalctl --no-pager -o verbose -g 'wallet created' | head -60)"
  note "lnd SERVER_ACTIVE ${t}s after the user manager started; seed kept 0600, 24 words; node $(cut -c1-16 "$W/identity")…"
}

@test "must-show 1: no password or seed word in a unit, systemctl show, a process, podman inspect or the journal" {
  # patterns: the password, its base64 (the initwallet body), and each pair of consecutive seed
  # words as JSON or text would hold them (single words are ordinary English words)
  mapfile -t words < <(sed -n 's/^ *[0-9]*\. //p' "$SEED")
  [ "${#words[@]}" = 24 ] || fail "${#words[@]} words"
  { cat "$PASSWORD"; echo; base64 -w0 <"$PASSWORD"; echo
    for i in $(seq 0 22); do
      a=${words[$i]} b=${words[$((i + 1))]}
      printf '%s\n' "$a\",\"$b" "$a\", \"$b" "$a $b" "$a\\\\\",\\\\\"$b"
    done; } >"$W/patterns"
  found() { grep -aF -f "$W/patterns" "$@" | cut -c1-160; }
  # control: the method finds them where they are
  found "$SEED" >/dev/null || fail "control: seed file"
  printf '%s' "${words[*]:3:2}" | grep -qF -f "$W/patterns" || fail "control: a pair"
  dirs=(/run/user/1000/systemd /usr/lib/systemd/user /etc/systemd/user "$NODE_HOME/.config/systemd" "$NODE_QUADLET")
  hits=$(grep -rlaF -f "$W/patterns" --devices=skip "${dirs[@]}" 2>/dev/null || true)
  [ -z "$hits" ] || fail "in unit files: $hits"
  mapfile -t units < <(uctl list-units --all --plain --no-legend --full | awk '{print $1}')
  { uctl show "${units[@]}"; uctl show; uctl show-environment; } >"$W/show" 2>/dev/null || true
  hits=$(found "$W/show" || true); [ -z "$hits" ] || fail "in systemctl --user show: $hits"
  : >"$W/procs"
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; echo; tr '\0' '\n' <"$p/environ"; } >>"$W/procs" 2>/dev/null || true
  done
  hits=$(found "$W/procs" || true); [ -z "$hits" ] || fail "in a process: $hits"
  upodman inspect $(upodman ps -aq) >"$W/inspect"
  hits=$(found "$W/inspect" || true); [ -z "$hits" ] || fail "in podman inspect: $hits"
  journalctl --no-pager -o export >"$W/journal"
  grep -aq '^MESSAGE=.*create-wallet: wallet created' "$W/journal" || fail "control: the step's entries"
  hits=$(found "$W/journal" || true); [ -z "$hits" ] || fail "in the journal: $hits"
  note "not found in: show of ${#units[@]} units, $(ls -d /proc/[0-9]* | wc -l) processes, podman inspect, $(grep -ac '^__CURSOR=' "$W/journal") journal entries"
}

@test "the seed is shown once, at a terminal only" {
  ! as_node "$HOOK" reveal lnd wallet >"$W/piped" 2>&1 || fail "reveal printed into a pipe"
  grep -q 'not a terminal' "$W/piped" || fail "$(cat "$W/piped")"
  as_node script -qec "$HOOK reveal lnd wallet" /dev/null >"$W/shown" || fail "reveal: $(cat "$W/shown")"
  [ "$(grep -cE '^ ?[0-9]+\. [a-z]+' "$W/shown")" = 24 ] || fail "shown: $(head -3 "$W/shown")"
  [ -f "$SEED.shown" ] || fail "not recorded as shown"
  ! as_node script -qec "$HOOK reveal lnd wallet" /dev/null >"$W/again" || fail "shown a second time"
  grep -q 'already shown' "$W/again" || fail "$(cat "$W/again")"
  ujournal ARCHY_HOOK=reveal ARCHY_APP=lnd -o cat | grep -q 'showed init step `wallet`' || fail "not in the journal"
}

@test "must-show 2: a kill, a user-manager restart and a rotation of bitcoind's password: lnd unlocks itself" {
  t0=$(now_us); upodman kill archy-lnd >/dev/null
  wait_for 30 eval '! serving' || true
  k=$(serve_secs "$t0")
  t0=$(now_us); user_manager_down || fail "manager down"; user_manager_up || fail "manager up"
  m=$(serve_secs "$t0")
  old=$(cid archy-lnd); t0=$(now_us)
  as_node "$HOOK" rotate bitcoind-rpc || fail "rotate failed"
  wait_for "$WAIT" eval '[ "$(cid archy-lnd)" != "$old" ]' || fail "lnd was not restarted on the new password"
  r=$(serve_secs "$t0")
  [ "$(identity)" = "$(cat "$W/identity")" ] || fail "another wallet: $(identity)"
  [ "$(ujournal ARCHY_HOOK=init -o cat | grep -c 'running init step')" = 1 ] || fail "the wallet step ran again"
  # after the init step's own lnd (which waits for initwallet), no lnd waited for a password
  ujournal -u archy-lnd.service -o cat | sed '1,/create-wallet: wallet created/d' >"$W/after-init"
  [ -s "$W/after-init" ] || fail "no journal after the init step"
  ! grep -q 'Waiting for wallet encryption password' "$W/after-init" || fail "lnd waited for a password"
  [ "$(ujournal -u archy-lnd.service -o cat | grep -c 'Opened wallet')" -ge 4 ] || fail "fewer unlocks than starts"
  note "SERVER_ACTIVE again, unlocked by itself: after podman kill ${k}s, user-manager restart ${m}s, rotate bitcoind-rpc ${r}s"
}

@test "must-show 3: while bitcoind syncs lnd waits, is not restarted, and serves once the sync ends" {
  touch "$DATA/bitcoin-core/standin-ibd"
  echo 20 >"$LND/standin-graph-sync"
  uctl restart --no-block archy-lnd.service
  t0=$(now)
  waiting() { row lnd | grep -q 'waiting for bitcoind to sync'; }
  wait_for 90 waiting || fail "status: $(row lnd)"
  note "after $(since "$t0"): $(row lnd | cut -c1-170)"
  waits() { row lnd-ui | grep -q 'waiting for archy-lnd.service'; }
  uctl restart --no-block archy-lnd-ui.service
  wait_for 30 waits || fail "lnd-ui: $(row lnd-ui)"
  note "its dependent: $(row lnd-ui | cut -c1-120)"
  sleep "$HOLD"
  [ "$(prop archy-lnd.service ActiveState)" = activating ] || fail "lnd is $(prop archy-lnd.service ActiveState)"
  [ "$(prop archy-lnd.service NRestarts)" = 0 ] || fail "restarted $(prop archy-lnd.service NRestarts) times"
  [ "$(prop archy-lnd.service TimeoutStartUSec)" = infinity ] || fail "TimeoutStartUSec=$(prop archy-lnd.service TimeoutStartUSec)"
  [ "$(lnd_state)" = RPC_ACTIVE ] || fail "state $(lnd_state)"
  note "after $(since "$t0"), not restarted: $(row lnd | cut -c1-170)"
  rm -f "$DATA/bitcoin-core/standin-ibd"
  t1=$(now)
  wait_for "$WAIT" serving || fail "$(why lnd)"
  a=$(since "$t1")
  graph() { row lnd | grep -q 'syncing its graph'; }
  wait_for 20 graph || note "(the graph sync was over before status looked: $(row lnd | cut -c1-120))"
  g=$(row lnd | cut -c1-120)
  wait_for 60 eval 'row lnd | grep -q "serving: "' || fail "status: $(row lnd)"
  wait_for "$WAIT" ready lnd-ui || fail "$(why lnd-ui)"
  [ "$(prop archy-lnd.service NRestarts)" = 0 ] || fail "restarted"
  note "sync over -> lnd active after $a; $g; then: $(row lnd | cut -c1-120)"
}

@test "must-show 4: each new channel.backup is copied to the backup location within 2 s, the last 10 kept" {
  src=$LND/data/chain/bitcoin/mainnet/channel.backup
  dst=$DATA/backups/lnd/channels
  [ "$(prop archy-lnd-backup-channels.path ActiveState)" = active ] || fail "path unit: $(uctl status --no-pager archy-lnd-backup-channels.path)"
  worst=0
  for i in $(seq 12); do
    before=$(date -r "$src" +%s.%N 2>/dev/null || echo none)
    touch "$LND/standin-open-channel"
    wait_for 30 eval '[ "$(date -r "$src" +%s.%N 2>/dev/null)" != "$before" ]' || fail "lnd did not rewrite channel.backup ($i)"
    wait_for 10 cmp -s "$src" "$dst/channel.backup" || fail "no byte-identical copy after 10 s ($i): $(ls -l "$dst")"
    # the delay itself: lnd's rename of the new file to archy's write of the copy (file times)
    d=$(awk -v a="$(date -r "$src" +%s.%N)" -v b="$(date -r "$dst/channel.backup" +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    echo "$d" >>"$W/delays"
    worst=$(awk -v a="$worst" -v b="$d" 'BEGIN { print (b > a) ? b : a }')
  done
  awk -v w="$worst" 'BEGIN { exit !(w <= 2) }' || fail "slowest copy took ${worst}s"
  n=$(ls "$dst" | grep -c '^channel\.backup\.[0-9]\{8\}T')
  [ "$n" = 10 ] || fail "$n versions kept: $(ls "$dst")"
  newest=$(ls "$dst" | grep '^channel\.backup\.[0-9]' | tail -1)
  cmp -s "$src" "$dst/$newest" || fail "the newest version differs from lnd's file"
  [ "$(stat -c %a "$dst")" = 700 ] && [ "$(stat -c %a "$dst/$newest")" = 600 ] || fail "modes $(stat -c %a "$dst" "$dst/$newest")"
  ujournal ARCHY_HOOK=backup ARCHY_APP=lnd -o cat | grep -q 'backup `channels`: copied' || fail "no journal entry"
  note "12 channel changes: each copy byte-identical, $(sort -n "$W/delays" | sed -n 6p)s median, ${worst}s slowest after lnd's rewrite; $n versions kept in $dst"
}

@test "must-show 5: removing and reinstalling the lnd app keeps the same wallet, unlocked" {
  # the admin removes the app (archy-reconcile.path applies it), then installs it again
  ln -sf /dev/null /etc/archipelago/apps/lnd.toml
  wait_for 60 eval '! upodman container exists archy-lnd' || fail "lnd still runs"
  wait_for 30 eval '[ "$(prop archy-lnd-backup-channels.path ActiveState)" != active ]' || fail "the backup watcher outlived the app"
  [ -f "$LND/data/chain/bitcoin/mainnet/wallet.db" ] && [ -f "$SEED" ] && [ -f "$PASSWORD" ] &&
    [ -f "$DATA/backups/lnd/channels/channel.backup" ] || fail "removal lost the wallet, the seed, its password or the channel backups"
  t0=$(now_us); rm -f /etc/archipelago/apps/lnd.toml
  s=$(serve_secs "$t0")
  [ "$(identity)" = "$(cat "$W/identity")" ] || fail "another wallet: $(identity)"
  [ "$(ujournal ARCHY_HOOK=init -o cat | grep -c 'running init step')" = 1 ] || fail "the wallet step ran again"
  wait_for 30 eval '[ "$(prop archy-lnd-backup-channels.path ActiveState)" = active ]' || fail "no backup watcher after the reinstall"
  note "reinstalled: the same node $(cut -c1-16 "$W/identity")…, serving ${s}s after the manifest came back"
}

@test "purging a removed lnd takes an explicit command that says what is lost; then a new wallet" {
  ! as_node "$HOOK" purge lnd --yes >"$W/purge" 2>&1 || fail "purged an installed app"
  grep -q 'is installed: remove it first' "$W/purge" || fail "$(cat "$W/purge")"
  ln -sf /dev/null /etc/archipelago/apps/lnd.toml
  wait_for 60 eval '! upodman container exists archy-lnd' || fail "lnd still runs"
  ! as_node "$HOOK" purge lnd >"$W/purge" 2>&1 || fail "purge without --yes succeeded"
  for what in "$LND:" "$NODE_STATE/archipelago/lnd:.*seed" "$DATA/backups/lnd:" "secrets/lnd-wallet:" "nothing deleted"; do
    grep -q "$what" "$W/purge" || fail "purge does not say $what: $(cat "$W/purge")"
  done
  ! grep -q 'secrets/bitcoind-rpc' "$W/purge" || fail "would purge a secret bitcoin-core still uses"
  [ -f "$SEED" ] && [ -f "$LND/data/chain/bitcoin/mainnet/wallet.db" ] || fail "deleted without --yes"
  as_node "$HOOK" purge lnd --yes >"$W/purge" 2>&1 || fail "purge --yes: $(cat "$W/purge")"
  [ ! -e "$LND" ] && [ ! -e "$SEED" ] && [ ! -e "$PASSWORD" ] && [ ! -e "$DATA/backups/lnd" ] || fail "left: $(ls -d "$LND" "$SEED" "$PASSWORD" "$DATA/backups/lnd" 2>&1)"
  [ -f "$NODE_STATE/archipelago/secrets/bitcoind-rpc/password" ] || fail "purged bitcoind's secret"
  ujournal ARCHY_HOOK=purge ARCHY_APP=lnd -o cat | grep -q "purged $LND" || fail "not in the journal"
  rm -f /etc/archipelago/apps/lnd.toml
  wait_for "$WAIT" serving || fail "lnd does not serve: $(why lnd)"
  [ "$(identity)" != "$(cat "$W/identity")" ] || fail "the same wallet after a purge"
  [ "$(ujournal ARCHY_HOOK=init -o cat | grep -c 'running init step')" = 2 ] || fail "no new wallet step"
  note "purged: $(grep -c '^  /' "$W/purge") items listed before; a new node $(identity | cut -c1-16)… after the reinstall"
}
