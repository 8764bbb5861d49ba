#!/usr/bin/env bats
#
# Every app follows the node's network (issue 12): the whole catalog on signet, then on regtest,
# then on signet again, switched by editing node.toml's `network` and nothing else (reconcile,
# through archy-reconcile.path, does the rest). Each app's network is read from inside its
# container, in the app's own terms; a third-party app that runs on regtest only says so in a
# failing unit on signet instead of starting wrong, and is stopped when the node leaves regtest;
# signet's data is left byte for byte as it was while regtest runs.
# Run: ARCHY_STAGE=DIR tests/e2e/run.sh networks
# archy-e2e-node: network = "signet"

source /src/tests/e2e/lib/common.sh

WAIT=${ARCHY_E2E_START_WAIT:-300}
HOOK=/usr/libexec/archipelago/archy-hook
NODE_TOML=/etc/archipelago/node.toml
ALL=(bitcoin-core bitcoin-ui btcpay-postgres btcpayserver electrumx fedimint filebrowser lnd lnd-ui
  mempool-backend mempool-frontend mempool-mariadb nbxplorer)
W=${BATS_FILE_TMPDIR:-/root}/networks

setup_file() { mkdir -p -m 700 "$W"; }

# env_in ID NAME: the variable as the app's main process (PID 1 in its container) has it
env_in() { in_ctr "$1" cat /proc/1/environ | tr '\0' '\n' | sed -n "s/^$2=//p"; }
label_of() { upodman inspect -f '{{index .Config.Labels "archy.network"}}' "archy-$1" 2>/dev/null; }
# the catalog runs on both networks
apps_on() { printf '%s\n' "${ALL[@]}"; }
# an admin's app for regtest only (a faucet, say): an image the bed has, doing nothing
TOOL=regtest-tool
install_tool() {
  install -d -m 755 /etc/archipelago/apps
  cat >/etc/archipelago/apps/$TOOL.toml.new <<'MANIFEST'
[app]
id = "regtest-tool"
[image]
ref = "docker.io/bitcoin/bitcoin:31.0"
[container]
entrypoint = []
command = ["sleep", "100000000"]
[networks]
regtest = {}
MANIFEST
  mv /etc/archipelago/apps/$TOOL.toml.new /etc/archipelago/apps/$TOOL.toml
}
tool_off() { ! upodman container exists "archy-$TOOL" && [ "$(prop "archy-$TOOL.service" ActiveState)" = failed ]; }
# ready_on NET ID: active, healthy, and its container is the one made for NET
ready_on() { ready "$2" && [ "$(label_of "$2")" = "$1" ]; }
# source_of ID TARGET: the host directory mounted at TARGET in the app's container
source_of() {
  upodman inspect -f '{{range .Mounts}}{{.Destination}} {{.Source}}{{"\n"}}{{end}}' "archy-$1" |
    awk -v t="$2" '$1 == t { print $2 }'
}
# every file of NET's data, by content: below a directory named after the network, as the apps
# (or archy's per-network subpath) keep it; bitcoind's RPC cookie exists only while it runs
net_data() {
  local dirs
  dirs=$(find "$DATA" -mindepth 2 -type d \( -name "$1" -o -name "${1^}" -o -name "$2" \) -prune -print | sort)
  [ -n "$dirs" ] || return 1
  # shellcheck disable=SC2086
  find $dirs -type f ! -name .cookie -print0 | sort -z | xargs -0 sha256sum
}

switch_to() {
  local net=$1
  sed -i "s/^network = .*/network = \"$net\"/" "$NODE_TOML"
  grep -qx "network = \"$net\"" "$NODE_TOML" || fail "node.toml: $(cat "$NODE_TOML")"
}

wait_all_on() {
  local net=$1 id
  for id in $(apps_on "$net"); do
    wait_for "$WAIT" ready_on "$net" "$id" || { as_node "$HOOK" status >&2; fail "$id not healthy on $net: $(why "$id") (label $(label_of "$id"))"; }
  done
}

# what each app runs on, from inside its container, in its own terms
check_networks() {
  local net=$1 chain=$2 got id
  got=$(in_ctr bitcoin-core bitcoin-cli -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin getblockchaininfo | grep -o '"chain": *"[a-z0-9]*"')
  [[ $got == *"\"$chain\"" ]] || fail "bitcoind: $got"
  note "bitcoin-core     getblockchaininfo $got"
  got=$(in_ctr lnd lncli --network="$net" getinfo | tr -d ' \n' | grep -o '"network":"[a-z0-9]*"')
  [ "$got" = "\"network\":\"$net\"" ] || fail "lnd getinfo: $got"
  note "lnd              getinfo chains[0].$got"
  [ "$(env_in electrumx NET)" = "$net" ] || fail "electrumx NET=$(env_in electrumx NET)"
  got=$(in_ctr electrumx cat /data/COIN)
  [[ $got == *"Bitcoin $net"* ]] || fail "electrumx COIN file: $got"
  note "electrumx        NET=$net; /data/COIN: $got"
  local folder; case $net in signet) folder=Signet ;; regtest) folder=RegTest ;; esac
  [ "$(env_in nbxplorer NBXPLORER_NETWORK)" = "$net" ] || fail "nbxplorer: $(env_in nbxplorer NBXPLORER_NETWORK)"
  in_ctr nbxplorer test -s "/datadir/$folder/.cookie" || fail "nbxplorer: no /datadir/$folder/.cookie"
  note "nbxplorer        NBXPLORER_NETWORK=$net; its cookie in /datadir/$folder"
  [ "$(env_in btcpayserver BTCPAY_NETWORK)" = "$net" ] || fail "btcpayserver: $(env_in btcpayserver BTCPAY_NETWORK)"
  in_ctr btcpayserver test -s /nbxplorer/.cookie || fail "btcpayserver: NBXplorer's cookie not mounted"
  note "btcpayserver     BTCPAY_NETWORK=$net; NBXplorer's $folder cookie at /nbxplorer/.cookie"
  [ "$(env_in fedimint FM_BITCOIN_NETWORK)" = "$net" ] || fail "fedimint: $(env_in fedimint FM_BITCOIN_NETWORK)"
  note "fedimint         FM_BITCOIN_NETWORK=$net"
  got=$(in_ctr mempool-backend cat /etc/mempool/mempool-config.json | grep -o '"\(NETWORK\|BACKEND\)": *"[a-z]*"' | tr '\n' ' ')
  [[ $got == *"\"NETWORK\": \"$net\""* ]] || fail "mempool-backend: $got"
  note "mempool-backend  $got"
  got=$(in_ctr mempool-frontend cat /var/www/mempool/browser/resources/config.js)
  [[ $got == *"ROOT_NETWORK: \"$net\""* && $got == *"${net^^}_ENABLED: true"* && $got == *"MAINNET_ENABLED: false"* ]] ||
    fail "mempool-frontend config.js: $got"
  note "mempool-frontend config.js: ROOT_NETWORK \"$net\", ${net^^}_ENABLED true, MAINNET_ENABLED false"
  for pair in btcpay-postgres:/var/lib/postgresql mempool-mariadb:/var/lib/mysql; do
    id=${pair%%:*}
    [ "$(source_of "$id" "${pair#*:}")" = "$DATA/$id/$net" ] || fail "$id mounts $(source_of "$id" "${pair#*:}")"
    note "$(printf '%-16s data %s' "$id" "$DATA/$id/$net")"
  done
  for id in bitcoin-ui lnd-ui; do
    in_ctr "$id" wget -qO- http://127.0.0.1:8080/ | grep -q "($net)" || fail "$id's page does not name $net"
  done
  note "bitcoin-ui, lnd-ui pages: ($net)"
  for id in $(apps_on "$net"); do
    [ "$(label_of "$id")" = "$net" ] || fail "$id: label $(label_of "$id")"
  done
  as_node "$HOOK" status >"$W/status.$net"
  head -n 1 "$W/status.$net" | grep -qx "node network: $net" || fail "status: $(head -n 1 "$W/status.$net")"
}

@test "signet: every catalog app is healthy; an app for regtest only says it cannot run here" {
  t0=$(now)
  mempool_pools_offline "$WAIT" || fail "mempool backend: $(why mempool-backend)"
  wait_all_on signet
  note "all ${#ALL[@]} apps healthy on signet $(since "$t0") after the scenario began"
  t0=$(now)
  install_tool
  wait_for 60 tool_off || fail "$TOOL: $(prop "archy-$TOOL.service" ActiveState), container: $(upodman ps -a --filter "name=archy-$TOOL" --format '{{.Names}}')"
  msg=$(as_node "$HOOK" explain "$TOOL" 2>&1 || true)
  [[ $msg == *"runs on regtest only, not on signet"* && $msg == *"does not run on the node's network"* ]] ||
    fail "explain $TOOL: $msg"
  note "$TOOL: failed $(since "$t0") after its manifest arrived: $(prop "archy-$TOOL.service" StatusText)"
}

@test "signet: each app's network, read from inside its container" {
  check_networks signet signet
  grep -E "^$TOOL " "$W/status.signet" | grep -q ' off-network ' || fail "status: $(grep -E "^$TOOL " "$W/status.signet")"
  [[ $(prop "archy-$TOOL.service" Description) == *"not on this network"* ]] || fail "$(prop "archy-$TOOL.service" Description)"
  [[ $(prop "archy-$TOOL.service" StatusText) == "not on this network: "* ]] || fail "$(prop "archy-$TOOL.service" StatusText)"
}

@test "to regtest by editing node.toml only: every app restarts on regtest, the regtest-only app starts" {
  wallet=$DATA/lnd/data/chain/bitcoin/signet/wallet.db
  [ -s "$wallet" ] || fail "no signet wallet"
  since=$(date '+%Y-%m-%d %H:%M:%S')
  t0=$(now)
  switch_to regtest
  mempool_pools_offline "$WAIT" "$since" || fail "mempool backend on regtest: $(why mempool-backend)"
  wait_all_on regtest
  note "all ${#ALL[@]} apps healthy on regtest $(since "$t0") after the edit"
  tool_on() { is_state "archy-$TOOL.service" active && [ "$(label_of "$TOOL")" = regtest ]; }
  wait_for 60 tool_on || fail "$TOOL on regtest: $(why "$TOOL")"
  net_data signet signet >"$W/signet.1" || fail "no signet data found"
  note "signet's data at rest: $(wc -l <"$W/signet.1") files in $(find "$DATA" -mindepth 2 -type d \( -name signet -o -name Signet \) -prune | wc -l) directories"
  check_networks regtest regtest
  [ -s "$DATA/lnd/data/chain/bitcoin/regtest/wallet.db" ] || fail "lnd made no regtest wallet"
}

@test "back to signet: regtest left signet's data byte for byte; signet runs on it again" {
  net_data signet signet >"$W/signet.2" || fail "no signet data found"
  diff "$W/signet.1" "$W/signet.2" >&2 || fail "signet's data changed while the node ran regtest"
  note "signet's $(wc -l <"$W/signet.2") files: identical after regtest ran"
  seeds=$(find "$NODE_STATE/archipelago/lnd/init" -type f | wc -l)
  store=$(cat "$DATA/btcpayserver/signet/standin-storeid")
  since=$(date '+%Y-%m-%d %H:%M:%S')
  t0=$(now)
  switch_to signet
  wait_all_on signet
  note "back on signet $(since "$t0") after the edit"
  # the regtest-only app is stopped, not left running on a signet node
  wait_for 60 tool_off || fail "$TOOL: $(prop "archy-$TOOL.service" ActiveState), label $(label_of "$TOOL")"
  ujournal -u archy-reconcile.service --since "$since" -o cat | grep -q "do not run on the node.s network: archy-$TOOL.service" ||
    fail "reconcile did not say it stopped $TOOL"
  check_networks signet signet
  [ "$(find "$NODE_STATE/archipelago/lnd/init" -type f | wc -l)" = "$seeds" ] || fail "lnd's wallet step ran again"
  [ "$(cat "$DATA/btcpayserver/signet/standin-storeid")" = "$store" ] || fail "BTCPay Server's store changed"
  ! ujournal -u archy-mempool-backend.service --since "$since" -o cat | grep -q 'Failed to retreive pools-v2.json sha' ||
    fail "the mempool backend lost its signet database's pools row"
  net_data regtest regtest >"$W/regtest.1" || fail "no regtest data"
  note "regtest's data kept: $(wc -l <"$W/regtest.1") files"
}
