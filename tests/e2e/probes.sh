# Facts about the (stand-in) images under archy's hardening, with plain `podman run`: which
# combinations of entrypoint, user, user namespace and capabilities work. Prints one line per
# probe; exits 0 unless the test bed itself breaks. Run: tests/e2e/sandbox.sh run tests/e2e/probes.sh
set -uo pipefail
. /src/tests/e2e/lib/common.sh
bash /src/tests/e2e/images/build.sh || exit 1

BTC=docker.io/bitcoin/bitcoin:31.0
LND=docker.io/lightninglabs/lnd:v0.21.2-beta
NGX=docker.io/nginxinc/nginx-unprivileged:1.29-alpine
HARD=(--cap-drop all --security-opt no-new-privileges)
CLI=(bitcoin-cli -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin -rpcclienttimeout=5 getblockchaininfo)

salt=$(openssl rand -hex 16); pw=$(openssl rand -hex 16)
hmac=$(printf %s "$pw" | openssl dgst -sha256 -hmac "$salt" -r | cut -d' ' -f1)
conf=$NODE_STATE/probe/bitcoin.conf
node_write "$conf" <<EOF
chain=main
server=1
[main]
rpcbind=0.0.0.0
rpcport=8332
rpcallowip=0.0.0.0/0
rpcauth=archy:$salt\$$hmac
EOF
upodman network create --subnet 10.89.42.0/24 archy >/dev/null

n=0
# probe NAME EXPECT-WORDS -- podman run args... : runs detached, waits, reports state and logs
probe() {
  local name=$1; shift
  n=$((n + 1)); local c=probe$n d=$DATA/probe$n
  install -d -o node -g node "$d"
  upodman run -d --name "$c" --network archy -v "$d:/home/bitcoin/.bitcoin" -v "$conf:/etc/bitcoin/bitcoin.conf:ro" "$@" >/dev/null 2>/tmp/err || {
    printf '%-4s %-62s run failed: %s\n' "P$n" "$name" "$(tr '\n' ' ' </tmp/err)"; return; }
  sleep 1.5
  local state; state=$(upodman inspect --format '{{.State.Status}} exit={{.State.ExitCode}}' "$c")
  local hc=-
  if [[ $state == running* ]]; then
    case "$*" in
      *$BTC*) hc=$(upodman exec "$c" "${CLI[@]}" >/dev/null 2>/tmp/err && echo cli-ok || echo "cli-fail($(head -c 80 /tmp/err | tr '\n' ' '))") ;;
      *$NGX*) hc=$(upodman exec "$c" wget -q -O /dev/null http://127.0.0.1:8080/ 2>/dev/null && echo http-ok || echo http-fail) ;;
      *$LND*) hc=$(upodman exec "$c" lncli --network=mainnet state 2>&1 | grep -o '[A-Z_]*ACTIVE\|WAITING[A-Z_]*' || echo lncli-fail) ;;
    esac
  fi
  printf '%-4s %-62s %s %s\n' "P$n" "$name" "$state" "$hc"
  upodman logs "$c" 2>&1 | grep -iE 'error|denied|not permitted|emerg|alert|fail' | head -2 | sed 's/^/       log: /'
  upodman rm -f -t 0 "$c" >/dev/null 2>&1
}

echo "== bitcoin/bitcoin:31.0 (entrypoint chowns the data dir, then gosu to uid 101)"
probe "image defaults" $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin
probe "no caps, no-new-privileges (archy's hardening)" "${HARD[@]}" $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf
probe "no caps + CHOWN SETUID SETGID" "${HARD[@]}" --cap-add CHOWN,SETUID,SETGID $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf
probe "no caps + CHOWN SETUID SETGID, keep-id as 101" "${HARD[@]}" --cap-add CHOWN,SETUID,SETGID --userns keep-id:uid=101,gid=101 $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf
probe "--entrypoint '' (command as in the manifest), no caps" "${HARD[@]}" --entrypoint '' $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin
probe "--entrypoint '', user 101, keep-id as 101, no caps" "${HARD[@]}" --entrypoint '' --user 101:101 --userns keep-id:uid=101,gid=101 $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin
probe "--entrypoint '', user 0, no caps" "${HARD[@]}" --entrypoint '' --user 0:0 $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin

echo "== nginx-unprivileged (USER 101), config mounted 0600 from the user's state dir"
ngconf=$NODE_STATE/probe/default.conf
node_write "$ngconf" <<'EOF'
server { listen 8080; location / { return 200 "ok\n"; } }
EOF
NGRO=(-v "$ngconf:/etc/nginx/conf.d/default.conf:ro" --read-only --tmpfs /tmp --tmpfs /var/cache/nginx)
probe "image defaults (uid 101)" "${NGRO[@]}" $NGX
probe "user 0:0, no caps, read-only (catalog + archy's hardening)" "${NGRO[@]}" --user 0:0 "${HARD[@]}" $NGX
probe "user 0:0, no caps + SETUID SETGID, read-only" "${NGRO[@]}" --user 0:0 "${HARD[@]}" --cap-add SETUID,SETGID $NGX
probe "uid 101, keep-id as 101, no caps, read-only" "${NGRO[@]}" --userns keep-id:uid=101,gid=101 "${HARD[@]}" $NGX

echo "== lnd (ENTRYPOINT lnd, root)"
lconf=$NODE_STATE/probe/lnd.conf
node_write "$lconf" <<EOF
[Bitcoin]
bitcoin.mainnet=true
bitcoin.node=bitcoind
[Bitcoind]
bitcoind.rpchost=bitcoind:8332
bitcoind.rpcuser=archy
bitcoind.rpcpass=$pw
EOF
install -d -o node -g node $DATA/btc
upodman run -d --name btc --network archy --network-alias bitcoind "${HARD[@]}" --entrypoint '' --user 101:101 \
  --userns keep-id:uid=101,gid=101 -v $DATA/btc:/home/bitcoin/.bitcoin -v "$conf:/etc/bitcoin/bitcoin.conf:ro" \
  $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin >/dev/null
probe "no caps, command 'lnd --configfile=...' after ENTRYPOINT lnd" -v "$lconf:/etc/lnd/lnd.conf:ro" "${HARD[@]}" $LND lnd --configfile=/etc/lnd/lnd.conf

echo "== a companion's upstream address after its app is recreated"
ngproxy=$NODE_STATE/probe/proxy.conf
node_write "$ngproxy" <<EOF
server { listen 8080; location / { proxy_pass http://bitcoind:8332; proxy_set_header Authorization "Basic $(printf 'archy:%s' "$pw" | base64 -w0)"; } }
EOF
upodman run -d --name ui --network archy -p 127.0.0.1:8081:8080 -v "$ngproxy:/etc/nginx/conf.d/default.conf:ro" \
  --userns keep-id:uid=101,gid=101 "${HARD[@]}" --read-only --tmpfs /tmp --tmpfs /var/cache/nginx $NGX >/dev/null
rpc() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"method":"uptime","id":1}' http://127.0.0.1:8081/; }
sleep 1
before=$(rpc); ip1=$(upodman inspect -f '{{(index .NetworkSettings.Networks "archy").IPAddress}}' btc)
upodman rm -f -t 0 btc >/dev/null
upodman run -d --name filler --network archy $BTC sleep 600 >/dev/null   # takes the freed address
upodman run -d --name btc --network archy --network-alias bitcoind "${HARD[@]}" --entrypoint '' --user 101:101 \
  --userns keep-id:uid=101,gid=101 -v $DATA/btc:/home/bitcoin/.bitcoin -v "$conf:/etc/bitcoin/bitcoin.conf:ro" \
  $BTC bitcoind -conf=/etc/bitcoin/bitcoin.conf -datadir=/home/bitcoin/.bitcoin >/dev/null
sleep 1
ip2=$(upodman inspect -f '{{(index .NetworkSettings.Networks "archy").IPAddress}}' btc)
printf '%-4s %-62s %s\n' P$((n + 1)) "nginx -> bitcoind:8332 before/after bitcoind is recreated" "HTTP $before ($ip1) / HTTP $(rpc) ($ip2)"
exit 0
