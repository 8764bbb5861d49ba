#!/usr/bin/env bats
#
# The whole node (issue 9): every app of the shipped catalog and its companions, started together
# by archy.target on a fresh node with their stand-in or real images (PostgreSQL, MariaDB and
# nginx are Debian's real programs), each as its image's own user. For each pair of apps that talk,
# a real request across it with the credentials archy generated; one app cannot read another's
# secret; Bitcoin Knots is switched in and back; a pair whose credentials disagree fails visibly.
# No `archy-e2e-apps` line: nothing is masked, archy.target starts everything it wants.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh whole-node

source /src/tests/e2e/lib/common.sh

WAIT=${ARCHY_E2E_START_WAIT:-300}
HOOK=/usr/libexec/archipelago/archy-hook
SECRETS=$NODE_STATE/archipelago/secrets
APPS=(bitcoin-core bitcoin-ui btcpay-postgres btcpayserver electrumx fedimint filebrowser lnd lnd-ui
  mempool-backend mempool-frontend mempool-mariadb nbxplorer)
W=${BATS_FILE_TMPDIR:-/root}/whole-node
NET=mainnet   # the bed's node.toml names no network

setup_file() { mkdir -p -m 700 "$W"; }

# in_ctr ID CMD...: a command in the app's container
# uid_in ID: the uid the app's main process (PID 1 in its container) runs as, in the container
uid_in() { in_ctr "$1" sh -c 'sed -n "s/^Uid:[[:space:]]*\([0-9]*\).*/\1/p" /proc/1/status'; }
# host_uid ID: the same process's uid on the host
host_uid() { sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$(upodman inspect -f '{{.State.Pid}}' "archy-$1")/status"; }
# declared ID: the secrets the app's manifest declares
declared() { awk '/^\[/ { s = ($0 == "[secrets]") } s && /=/ { print $1 }' "/usr/share/archipelago/apps/$1.toml"; }
# psql_as ROLE SQL: psql in the database's container, as an app's role, with its password given
# on stdin to a pgpass file (never on a command line)
psql_as() {
  { printf '*:*:*:%s:' "$1"; cat "$SECRETS/$1-db/password"; echo; } |
    upodman exec -i -e "ROLE=$1" -e "SQL=$2" archy-btcpay-postgres sh -c 'umask 077; cat >/tmp/e2e.pgpass
      PGPASSFILE=/tmp/e2e.pgpass psql -h 127.0.0.1 -U "$ROLE" -d "$ROLE" -tAc "$SQL"; rc=$?; rm -f /tmp/e2e.pgpass; exit $rc'
}
mariadb_as_mempool() {
  { printf '[client]\npassword='; cat "$SECRETS/mempool-db/password"; echo; } |
    upodman exec -i -e "SQL=$1" archy-mempool-mariadb sh -c 'umask 077; cat >/tmp/e2e.cnf
      mariadb --defaults-extra-file=/tmp/e2e.cnf -h 127.0.0.1 -u mempool mempool -N -e "$SQL"; rc=$?; rm -f /tmp/e2e.cnf; exit $rc'
}

@test "the generator made a unit for every app, none invalid" {
  for id in "${APPS[@]}" bitcoin-knots; do
    [ "$(prop "archy-$id.service" LoadState)" = loaded ] || fail "archy-$id.service: $(prop "archy-$id.service" LoadState)"
  done
  as_node "$HOOK" status --json >"$W/status.json"
  ! grep -q '"manifest":"invalid"' "$W/status.json" || fail "invalid manifests: $(grep invalid "$W/status.json")"
}

@test "the mempool backend's first start: the pools list a node with internet gets from GitHub" {
  # this bed has no internet: the backend exits ("Failed to retreive pools-v2.json sha"), as it
  # would on an offline node; the row its first fetch writes stands in for that one fetch
  mempool_pools_offline "$WAIT" || fail "the backend never asked for the pools list, or the row was not written: $(why mempool-backend)"
  note "mempool backend: no pools list without GitHub ($(prop archy-mempool-backend.service NRestarts) restart(s)); row written"
}

@test "every app turns healthy; each runs as its image's user" {
  boot=$(mgr_us UserspaceTimestamp)
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || { as_node "$HOOK" status >&2; fail "$(why "$id")"; }
  done
  last=0
  for id in "${APPS[@]}"; do
    h=$(first_healthy_us "archy-$id") || fail "archy-$id: no passing check in podman's health log"
    [ "$h" -le "$last" ] || last=$h
    note "$(printf '%-17s uid %-5s in its container (host uid %s), healthy %6ss after the user manager started' \
      "$id" "$(uid_in "$id")" "$(host_uid "$id")" "$(secs "$boot" "$h")")"
  done
  note "all ${#APPS[@]} apps healthy $(secs "$boot" "$last")s after the user manager started"
  # the image's own user (catalog/IMAGES.md), the service user on the host
  for pair in bitcoin-core:101 bitcoin-ui:101 lnd-ui:101 btcpay-postgres:999 mempool-mariadb:999 \
      mempool-backend:1000 mempool-frontend:1000 filebrowser:1000 lnd:0 electrumx:0 fedimint:0 \
      nbxplorer:0 btcpayserver:0; do
    id=${pair%%:*} want=${pair#*:}
    [ "$(uid_in "$id")" = "$want" ] || fail "$id runs as uid $(uid_in "$id") in its container, not $want"
    [ "$(host_uid "$id")" = 1000 ] || fail "$id's process is uid $(host_uid "$id") on the host, not the service user"
  done
}

@test "each app writes its own data dir as its own user; the files are the service user's" {
  for id in bitcoin-core btcpay-postgres mempool-mariadb mempool-backend filebrowser lnd electrumx nbxplorer btcpayserver fedimint; do
    n=$(find "$DATA/$id" -mindepth 1 | wc -l)
    [ "$n" -gt 0 ] || fail "$id wrote nothing under $DATA/$id"
    other=$(find "$DATA/$id" ! -user node | head -n 3)
    [ -z "$other" ] || fail "$id: files not owned by the service user: $other"
  done
  note "PostgreSQL cluster: $(find "$DATA/btcpay-postgres" -type f | wc -l) files; MariaDB: $(find "$DATA/mempool-mariadb" -type f | wc -l) files; all the service user's"
}

@test "no app can read another app's secret" {
  # what each container has mounted from the secrets directory: only what it declares
  for id in "${APPS[@]}"; do
    upodman inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "archy-$id" |
      sed -n "s|^$SECRETS/\([^/]*\).*|\1|p" | while read -r s; do
        declared "$id" | grep -qx "$s" || fail "$id mounts secret $s, which it does not declare"
      done
  done
  # and trying: File Browser (uid 1000) and BTCPay Server (root) look for the others' files
  for probe in "filebrowser /run/secrets/bitcoind-rpc/password" "filebrowser /run/secrets/mempool-db/password" \
      "btcpayserver /run/secrets/nbxplorer-db/password" "mempool-frontend /run/secrets/mempool-db/password"; do
    set -- $probe
    if in_ctr "$1" cat "$2" >/dev/null 2>&1; then fail "$1 can read $2"; fi
  done
  # nothing under the service user's state (secrets, rendered configs) is reachable by path
  for id in filebrowser btcpayserver mempool-backend; do
    if in_ctr "$id" sh -c "ls $NODE_STATE $SECRETS" >/dev/null 2>&1; then fail "$id sees $NODE_STATE"; fi
  done
  # the database holds each app's role with its own password: one app's password is not the other's
  psql_as nbxplorer 'select 1' >/dev/null || fail "nbxplorer's password does not open its database"
  { printf '*:*:*:btcpayserver:'; cat "$SECRETS/nbxplorer-db/password"; echo; } |
    in_ctr btcpay-postgres sh -c 'umask 077; cat >/tmp/x; PGPASSFILE=/tmp/x psql -h 127.0.0.1 -U btcpayserver -d btcpayserver -c "select 1" 2>&1; rm -f /tmp/x' >"$W/cross" || true
  grep -q 'password authentication failed' "$W/cross" || fail "NBXplorer's password opened BTCPay's database: $(cat "$W/cross")"
}

@test "lnd <-> bitcoind: RPC and both ZMQ feeds" {
  in_ctr lnd lncli state | grep -q SERVER_ACTIVE || fail "lnd: $(in_ctr lnd lncli state 2>&1)"
  ujournal -u archy-bitcoin-core.service -o cat | grep -q 'pubrawblock: SUB subscriber' || fail "no ZMQ block subscriber"
  ujournal -u archy-bitcoin-core.service -o cat | grep -q 'pubrawtx: SUB subscriber' || fail "no ZMQ tx subscriber"
  ujournal -u archy-bitcoin-core.service -o cat | grep -q '(rpcauth bitcoind-rpc) getblockchaininfo: 200' || fail "no RPC as bitcoind-rpc"
}

@test "bitcoin-ui: the node's state through its own whitelisted RPC user; anything else refused" {
  page=$(curl -fsS --max-time 10 http://127.0.0.1:8081/) || fail "no page"
  case $page in *getblockchaininfo*) ;; *) fail "not the UI's page: ${page:0:200}" ;; esac
  ui() { curl -s -o "$W/ui" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"1.0\",\"id\":\"e2e\",\"method\":\"$1\",\"params\":[]}" http://127.0.0.1:8081/rpc; }
  [ "$(ui getblockchaininfo)" = 200 ] || fail "getblockchaininfo: $(cat "$W/ui")"
  grep -q '"blocks":900000' "$W/ui" || fail "not bitcoind's answer: $(cat "$W/ui")"
  for m in stop getrawtransaction sendrawtransaction dumpprivkey; do
    code=$(ui "$m")
    [ "$code" = 403 ] || fail "$m through the UI: HTTP $code"
  done
  ujournal -u archy-bitcoin-core.service -o cat | grep -q 'RPC User bitcoin-ui-rpc not allowed to call method stop' ||
    fail "bitcoind did not log the refusal"
}

@test "lnd-ui: lnd's state over its TLS REST API; nothing else proxied" {
  curl -fsS --max-time 10 http://127.0.0.1:8082/ | grep -q 'Lightning node' || fail "no page"
  state=$(curl -fsS --max-time 10 http://127.0.0.1:8082/v1/state) || fail "no state"
  case $state in *SERVER_ACTIVE*) ;; *) fail "state: $state" ;; esac
  for p in /v1/genseed /v1/getinfo /v1/unlockwallet; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:8082$p")
    [ "$code" = 404 ] || fail "$p through the UI: HTTP $code"
  done
}

@test "mempool: frontend -> backend -> bitcoind, ElectrumX and MariaDB" {
  h=$(curl -fsS --max-time 10 http://127.0.0.1:4080/api/v1/blocks/tip/height) || fail "no tip height through the frontend"
  curl -fsS --max-time 10 http://127.0.0.1:4080/api/v1/fees/recommended >"$W/fees" || fail "no fees through the frontend"
  [ "$h" = 900000 ] || fail "tip height $h"
  curl -fsS --max-time 10 http://127.0.0.1:4080/ | grep -q '<html' || fail "no page"
  tables=$(mariadb_as_mempool 'show tables' | wc -l) || fail "the mempool user cannot open its database"
  [ "$tables" -gt 0 ] || fail "the backend created no tables"
  note "mempool: tip height $h through frontend and backend; $tables tables in MariaDB written by the backend"
}

@test "ElectrumX serves the Electrum protocol on the host's port 50001" {
  exec 5<>/dev/tcp/127.0.0.1/50001 || fail "port 50001 is closed"
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"server.version","params":["archy-e2e","1.4"]}' >&5
  read -r -t 10 reply <&5 || true
  exec 5<&-
  case $reply in *ElectrumX*) ;; *) fail "server.version: $reply" ;; esac
}

@test "File Browser: the admin logs in with the generated password; a wrong one is refused" {
  login() { curl -s -o "$W/fb" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    --data-binary @"$1" http://127.0.0.1:8085/api/login; }
  { printf '{"username":"admin","password":"'; cat "$SECRETS/filebrowser-admin/password"; printf '"}'; } >"$W/good.json"
  printf '{"username":"admin","password":"not-the-password"}' >"$W/bad.json"
  [ "$(login "$W/good.json")" = 200 ] || fail "login: $(cat "$W/fb")"
  [ "$(login "$W/bad.json")" = 403 ] || fail "a wrong password: $(cat "$W/fb")"
}

@test "btcpay-postgres: each app's role owns its database; no trust anywhere" {
  psql_as nbxplorer "select count(*) from information_schema.tables where table_schema = 'public'" >"$W/nbx" ||
    fail "nbxplorer cannot open its database"
  psql_as btcpayserver "select count(*) from information_schema.tables where table_schema = 'public'" >"$W/btc" ||
    fail "btcpayserver cannot open its database"
  [ "$(cat "$W/nbx")" -gt 0 ] && [ "$(cat "$W/btc")" -gt 0 ] || fail "tables: nbxplorer $(cat "$W/nbx"), btcpayserver $(cat "$W/btc")"
  hba=$(in_ctr btcpay-postgres sh -c 'grep -v "^#" "$PGDATA/pg_hba.conf" | grep .')
  ! echo "$hba" | grep -qw trust || fail "trust in pg_hba.conf: $hba"
  note "PostgreSQL: nbxplorer $(cat "$W/nbx") tables, btcpayserver $(cat "$W/btc") tables, pg_hba: scram-sha-256 only"
}

@test "btcpayserver -> nbxplorer -> postgres: an invoice gets its address from NBXplorer" {
  key=$(cat "$DATA/btcpayserver/$NET/standin-apikey") store=$(cat "$DATA/btcpayserver/$NET/standin-storeid")
  api() { curl -s -o "$W/inv" -w '%{http_code}' --max-time 20 -H "Authorization: token $key" -H 'Content-Type: application/json' "$@"; }
  code=$(api -d '{"amount":"0.001","currency":"BTC"}' "http://127.0.0.1:49392/api/v1/stores/$store/invoices")
  [ "$code" = 200 ] || fail "invoice: HTTP $code $(cat "$W/inv")"
  id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$W/inv")
  [ -n "$id" ] || fail "no invoice id: $(cat "$W/inv")"
  code=$(api "http://127.0.0.1:49392/api/v1/stores/$store/invoices/$id/payment-methods")
  [ "$code" = 200 ] || fail "payment methods: HTTP $code $(cat "$W/inv")"
  addr=$(grep -o '"destination":"[^"]*"' "$W/inv" | head -n 1 | cut -d'"' -f4)
  [ -n "$addr" ] || fail "no destination address: $(cat "$W/inv")"
  # NBXplorer handed it out (its database, as its own role) and BTCPay recorded it (its own)
  n=$(psql_as nbxplorer "select count(*) from descriptors_scripts where used") || fail "nbxplorer's database"
  [ "$n" -gt 0 ] || fail "NBXplorer marked no address used"
  m=$(psql_as btcpayserver "select count(*) from \"AddressInvoices\"") || fail "btcpayserver's database"
  [ "$m" -gt 0 ] || fail "BTCPay recorded no invoice address"
  note "invoice $id: pay to $addr (from NBXplorer: $n address(es) used; BTCPay: $m recorded)"
}

@test "fedimint <-> bitcoind once the guardian is set up (the admin gives its addresses)" {
  # the admin's manifest, as documented: the vendor one plus the guardian's public addresses
  sed 's|^environment = { FM_DATA_DIR|environment = { FM_P2P_URL = "fedimint://fm.example:8173", FM_API_URL = "wss://fm.example/ws/", FM_DATA_DIR|' \
    /usr/share/archipelago/apps/fedimint.toml | admin_manifest fedimint
  inv=$(prop archy-fedimint.service InvocationID)
  restarted() { [ "$(prop archy-fedimint.service InvocationID)" != "$inv" ] && ready fedimint; }
  wait_for 120 restarted || fail "fedimint was not restarted onto the admin's manifest: $(why fedimint)"
  c=archy-fedimint
  upodman exec $c curl -s -o /dev/null -X POST \
    -d 'name=g1&password=guardian-pw&is_lead=true&federation_name=archy&federation_size=1&enable_base_fees=true&enabled_modules=ln&enabled_modules=lnv2&enabled_modules=meta&enabled_modules=mint&enabled_modules=wallet' \
    http://127.0.0.1:8175/ || fail "setup form"
  jar=$(upodman exec $c curl -s -D - -o /dev/null -X POST -d password=guardian-pw http://127.0.0.1:8175/login |
    tr -d '\r' | awk -F'[ ;]' 'tolower($1)=="set-cookie:" {print $2}')
  [ -n "$jar" ] || fail "no login cookie"
  upodman exec $c curl -s -o /dev/null -b "$jar" -X POST http://127.0.0.1:8175/start_dkg || fail "start_dkg"
  engine() { ujournal -u archy-fedimint.service -o cat | grep -q 'Starting Consensus Engine'; }
  wait_for 90 engine || fail "no consensus engine: $(ujournal -u archy-fedimint.service -o cat | tail -n 8)"
  ip=$(ip_of archy-fedimint)
  ujournal -u archy-bitcoin-core.service -o cat | grep -q "\[http\] $ip (rpcauth bitcoind-rpc) getblockchaininfo: 200" ||
    fail "no RPC from fedimint ($ip) with the generated credentials"
  wait_for 60 ready fedimint || fail "fedimint not healthy after setup: $(why fedimint)"
}

@test "Bitcoin Knots switched in and back: the dependents follow" {
  t0=$(now)
  uctl start archy-bitcoin-knots.service || fail "starting knots: $(why bitcoin-knots)"
  wait_for 60 ready bitcoin-knots || fail "$(why bitcoin-knots)"
  [ "$(prop archy-bitcoin-core.service ActiveState)" = inactive ] || fail "core still $(prop archy-bitcoin-core.service ActiveState)"
  [ "$(uid_in bitcoin-knots)" = 999 ] || fail "knots runs as $(uid_in bitcoin-knots)"
  lnd_on() { in_ctr lnd lncli state 2>/dev/null | grep -q SERVER_ACTIVE; }
  wait_for 90 lnd_on || fail "lnd not active on knots: $(why lnd)"
  reached() { ujournal -u archy-bitcoin-knots.service -o cat | grep -q '(rpcauth bitcoind-rpc)'; }
  wait_for 30 reached || fail "no app reached knots"
  note "knots in: healthy and lnd on it after $(since "$t0")"
  t0=$(now)
  uctl start archy-bitcoin-core.service || fail "starting core: $(why bitcoin-core)"
  wait_for 60 ready bitcoin-core || fail "$(why bitcoin-core)"
  [ "$(prop archy-bitcoin-knots.service ActiveState)" = inactive ] || fail "knots still $(prop archy-bitcoin-knots.service ActiveState)"
  for id in "${APPS[@]}"; do
    wait_for "$WAIT" ready "$id" || fail "after switching back: $(why "$id")"
  done
  note "core back: every app healthy again after $(since "$t0")"
}

@test "a pair whose credentials disagree fails visibly: BTCPay Server with a password PostgreSQL no longer takes" {
  # as the superuser, give btcpayserver's role another password: the pair now disagrees
  { printf '*:*:*:postgres:'; cat "$SECRETS/btcpay-postgres/password"; echo; } |
    in_ctr btcpay-postgres sh -c 'umask 077; cat >/tmp/su; PGPASSFILE=/tmp/su psql -h 127.0.0.1 -U postgres -d postgres -c "ALTER ROLE btcpayserver PASSWORD '"'"'not-the-secret'"'"'"; rc=$?; rm -f /tmp/su; exit $rc' >/dev/null ||
    fail "could not change the role's password"
  uctl restart --no-block archy-btcpayserver.service
  failing() {
    [ "$(prop archy-btcpayserver.service ActiveState)" != active ] &&
      ujournal -u archy-btcpayserver.service --since=-60s -o cat | grep -q 'password authentication failed for user "btcpayserver"'
  }
  wait_for 60 failing || fail "no visible failure: $(why btcpayserver)"
  sleep 12
  [ "$(prop archy-btcpayserver.service ActiveState)" != active ] || fail "reported active with wrong credentials"
  [ "$(health archy-btcpayserver)" != healthy ] || fail "reported healthy with wrong credentials"
  as_node "$HOOK" status >"$W/st"
  grep '^btcpayserver ' "$W/st" | grep -q 'not listening yet' || fail "status does not say why: $(grep '^btcpayserver ' "$W/st")"
  note "$(grep '^btcpayserver ' "$W/st" | tr -s ' ' | cut -c1-160)"
  # and back: the secret's password again (read from its file inside the container)
  { printf '*:*:*:postgres:'; cat "$SECRETS/btcpay-postgres/password"; echo; } |
    in_ctr btcpay-postgres sh -c 'umask 077; cat >/tmp/su; echo "ALTER ROLE btcpayserver PASSWORD :'"'"'pw'"'"';" >/tmp/sql
      PGPASSFILE=/tmp/su psql -h 127.0.0.1 -U postgres -d postgres --set=pw="$(cat /run/secrets/btcpayserver-db/password)" -f /tmp/sql
      rc=$?; rm -f /tmp/su /tmp/sql; exit $rc' >/dev/null ||
    fail "could not restore the role's password"
  wait_for 120 ready btcpayserver || fail "BTCPay did not recover: $(why btcpayserver)"
}
