# Smoke test of the test bed itself, with hand-written Quadlet files (not archy's generator):
# the stand-in images behave under systemd + Quadlet as archy's units will use them.
# - bitcoind on a user-defined network turns its unit active only once healthy (Notify=healthy,
#   HealthCmd running bitcoin-cli with the cookie);
# - lnd finds it by its alias through aardvark-dns and turns SERVER_ACTIVE;
# - an nginx companion proxies to it with an Authorization header: 200 from the host through the
#   published port, also after bitcoind's container is recreated with a new address;
# - systemd restarts a killed container; stops are prompt.
# The units follow what archy-generator renders (no capabilities, no-new-privileges, data and
# 0600 configs owned by the user), with the deviations marked "differs:" (see probes.sh).
# Run: tests/e2e/sandbox.sh run tests/e2e/smoke.sh
set -euo pipefail
. /src/tests/e2e/lib/common.sh
trap '[ $? = 0 ] || dump_state' EXIT

echo "smoke:" >&2
step "stand-in images present"
bash /src/tests/e2e/images/build.sh
pass

step "secrets, configs (0600) and data dirs"
salt=$(openssl rand -hex 16); pw=$(openssl rand -hex 32)
hmac=$(printf %s "$pw" | openssl dgst -sha256 -hmac "$salt" -r | cut -d' ' -f1)
node_write "$NODE_STATE/archipelago/bitcoin-core/config/bitcoin.conf" <<EOF
chain=main
server=1
[main]
rpcbind=0.0.0.0
rpcport=8332
rpcallowip=10.89.42.0/24
rpcauth=archy:$salt\$$hmac
EOF
node_write "$NODE_STATE/archipelago/lnd/config/lnd.conf" <<EOF
[Application Options]
listen=0.0.0.0:9735
rpclisten=0.0.0.0:10009
restlisten=0.0.0.0:8080

[Bitcoin]
bitcoin.mainnet=true
bitcoin.node=bitcoind

[Bitcoind]
bitcoind.rpchost=bitcoind:8332
bitcoind.rpcuser=archy
bitcoind.rpcpass=$pw
EOF
# differs: the upstream is resolved per request through aardvark-dns (the network's gateway),
# not once at startup, so a recreated bitcoind (new address) does not leave a stale upstream
node_write "$NODE_STATE/archipelago/bitcoin-ui/config/nginx.conf" <<EOF
server {
    listen 8080;
    resolver 10.89.42.1 valid=5s;
    location = /archy-health { return 200 "ok\n"; }
    location / {
        set \$upstream http://bitcoind:8332;
        proxy_pass \$upstream;
        proxy_set_header Authorization "Basic $(printf 'archy:%s' "$pw" | base64 -w0)";
    }
}
EOF
install -d -o node -g node $DATA/bitcoin-core $DATA/lnd
pass

step "Quadlet files, daemon-reload"
install -d -o node -g node "$NODE_QUADLET"
cat >"$NODE_QUADLET/archy.network" <<'EOF'
[Unit]
Description=archy app network
[Network]
NetworkName=archy
# differs: a fixed subnet, so companions can name the resolver (its gateway) in their config
Subnet=10.89.42.0/24
EOF
common_unit() {  # the generator's [Unit]/[Service] settings, with short test timings
  cat <<EOF
[Unit]
Description=$1 (smoke)
StartLimitIntervalSec=0
$2
[Service]
Restart=always
RestartSec=1
RestartSteps=10
RestartMaxDelaySec=30
TimeoutStartSec=60
TimeoutStopSec=40
EOF
}
{ common_unit "Bitcoin Core" ""; cat <<'EOF'
[Container]
ContainerName=archy-bitcoin-core
Image=docker.io/bitcoin/bitcoin:31.0
Pull=never
Network=archy.network
NetworkAlias=bitcoind
PublishPort=8333:8333/tcp
Volume=/var/lib/archipelago/bitcoin-core:/home/bitcoin/.bitcoin
Volume=%S/archipelago/bitcoin-core/config/bitcoin.conf:/etc/bitcoin/bitcoin.conf:ro
# differs: the image's entrypoint chowns the data dir and gosu's to uid 101, impossible without
# capabilities; the manifest's command runs directly, as the container's root = the user
Entrypoint=[]
Exec=bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin -printtoconsole
DropCapability=all
NoNewPrivileges=true
HealthCmd=bitcoin-cli -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin -rpcclienttimeout=10 getblockchaininfo
HealthInterval=2s
HealthStartPeriod=30s
HealthTimeout=5s
HealthRetries=3
HealthOnFailure=kill
Notify=healthy
StopTimeout=10
Label=archy.app=bitcoin-core
EOF
} >"$NODE_QUADLET/archy-bitcoin-core.container"
{ common_unit LND $'Wants=archy-bitcoin-core.service\nAfter=archy-bitcoin-core.service'; cat <<'EOF'
[Container]
ContainerName=archy-lnd
Image=docker.io/lightninglabs/lnd:v0.21.2-beta
Pull=never
Network=archy.network
PublishPort=9735:9735/tcp
Volume=/var/lib/archipelago/lnd:/root/.lnd
Volume=%S/archipelago/lnd/config/lnd.conf:/etc/lnd/lnd.conf:ro
Exec=lnd --configfile=/etc/lnd/lnd.conf
DropCapability=all
NoNewPrivileges=true
HealthCmd=lncli --network=mainnet state | grep -q SERVER_ACTIVE
HealthInterval=2s
HealthStartPeriod=30s
HealthTimeout=5s
HealthRetries=3
HealthOnFailure=kill
Notify=healthy
StopTimeout=10
Label=archy.app=lnd
EOF
} >"$NODE_QUADLET/archy-lnd.container"
{ common_unit "Bitcoin node UI" $'Wants=archy-bitcoin-core.service\nAfter=archy-bitcoin-core.service'; cat <<'EOF'
[Container]
ContainerName=archy-bitcoin-ui
Image=docker.io/nginxinc/nginx-unprivileged:1.29-alpine
Pull=never
Network=archy.network
PublishPort=127.0.0.1:8081:8080/tcp
Volume=%S/archipelago/bitcoin-ui/config/nginx.conf:/etc/nginx/conf.d/default.conf:ro
Tmpfs=/tmp
Tmpfs=/var/cache/nginx
ReadOnly=true
# differs: not User=0:0 (nginx as root chowns its temp dirs and switches users: capabilities);
# the image's own uid 101, mapped to the user, reads the 0600 config with no capability
UserNS=keep-id:uid=101,gid=101
DropCapability=all
NoNewPrivileges=true
HealthCmd=wget -q -O /dev/null http://127.0.0.1:8080/archy-health
HealthInterval=2s
HealthStartPeriod=30s
HealthTimeout=5s
HealthRetries=3
HealthOnFailure=kill
Notify=healthy
StopTimeout=10
Label=archy.app=bitcoin-ui
EOF
} >"$NODE_QUADLET/archy-bitcoin-ui.container"
chown -R node:node "$NODE_HOME/.config"
uctl daemon-reload
for u in archy-network archy-bitcoin-core archy-lnd archy-bitcoin-ui; do
  [ "$(prop $u.service LoadState)" = loaded ] || fail "$u.service not generated: $(as_node /usr/libexec/podman/quadlet -dryrun -user 2>&1 | tail -3)"
done
pass

step "bitcoind: start returns once healthy"
uctl start archy-bitcoin-core.service || fail "start failed"
[ "$(prop archy-bitcoin-core.service ActiveState)" = active ] || fail "not active"
[ "$(health archy-bitcoin-core)" = healthy ] || fail "health: $(health archy-bitcoin-core)"
pass

step "bitcoin-cli in the container (cookie auth)"
out=$(upodman exec archy-bitcoin-core bitcoin-cli -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin getblockchaininfo)
grep -q '"chain": "main"' <<<"$out" || fail "unexpected: $out"
[ "$(stat -c %U $DATA/bitcoin-core/.cookie)" = node ] || fail "cookie not owned by node"
pass

step "lnd: resolves bitcoind by alias, SERVER_ACTIVE"
uctl start archy-lnd.service || fail "start failed"
# not `cmd | grep -q` under pipefail: grep may exit first and the writer die of SIGPIPE
grep -q SERVER_ACTIVE <<<"$(upodman exec archy-lnd lncli --network=mainnet state)" || fail "not SERVER_ACTIVE"
grep -q 'connected to bitcoind' <<<"$(ujournal -u archy-lnd.service)" || fail "no 'connected to bitcoind' in its journal"
pass

step "bitcoin-ui: RPC through nginx from the host: 200"
uctl start archy-bitcoin-ui.service || fail "start failed"
rpc() { curl -s -o /tmp/rpc.out -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
  -d '{"jsonrpc":"1.0","id":"smoke","method":"getblockchaininfo","params":[]}' http://127.0.0.1:8081/; }
code=$(rpc); [ "$code" = 200 ] || fail "HTTP $code: $(cat /tmp/rpc.out)"
grep -q '"chain":"main"' /tmp/rpc.out || fail "unexpected body: $(cat /tmp/rpc.out)"
[ "$(curl -s http://127.0.0.1:8081/archy-health)" = ok ] || fail "archy-health"
pass

step "wrong credentials: 401 (asked from the lnd container)"
# rootless: the bridge lives in podman's own network namespace, the host cannot reach it directly
out=$(upodman exec archy-lnd wget -q -O /dev/null --header 'Authorization: Basic YXJjaHk6d3Jvbmc=' \
  --post-data '{"method":"uptime"}' http://bitcoind:8332/ 2>&1 || true)
grep -q 401 <<<"$out" || fail "expected 401, got: $out"
pass

step "killed bitcoind: systemd restarts it, healthy again"
inv=$(prop archy-bitcoin-core.service InvocationID)
ip1=$(ip_of archy-bitcoin-core)
upodman kill archy-bitcoin-core >/dev/null
wait_for 30 restarts_at_least archy-bitcoin-core.service 1 || fail "no restart"
wait_for 30 is_state archy-bitcoin-core.service active || fail "not active again"
[ "$(prop archy-bitcoin-core.service InvocationID)" != "$inv" ] || fail "same InvocationID"
[ "$(health archy-bitcoin-core)" = healthy ] || fail "health: $(health archy-bitcoin-core)"
ip2=$(ip_of archy-bitcoin-core)
pass

step "bitcoin-ui still proxies (bitcoind moved $ip1 -> $ip2)"
ui_ok() { [ "$(rpc)" = 200 ]; }
wait_for 15 ui_ok || fail "HTTP $(rpc) after bitcoind was recreated"
pass

step "lnd back to SERVER_ACTIVE after bitcoind's restart"
lnd_active() { grep -q SERVER_ACTIVE <<<"$(upodman exec archy-lnd lncli --network=mainnet state)"; }
wait_for 15 lnd_active || fail "lnd not active"
pass

step "stop all three (SIGTERM handled: well under podman's 10 s)"
t=$(now)
uctl stop archy-bitcoin-ui.service archy-lnd.service archy-bitcoin-core.service
took=$(awk -v a="$t" -v b="$(now)" 'BEGIN { print int(b - a) }')
[ "$took" -lt 5 ] || fail "stopping took ${took}s"
for u in archy-bitcoin-ui archy-lnd archy-bitcoin-core; do
  [ "$(prop $u.service ActiveState)" = inactive ] || fail "$u: $(prop $u.service ActiveState)"
done
[ -z "$(upodman ps -aq)" ] || fail "containers left: $(upodman ps -a --format '{{.Names}}')"
[ ! -e $DATA/bitcoin-core/.cookie ] || fail "bitcoind left its cookie behind"
pass
echo "smoke: passed in $(since "$E2E_T0")" >&2
