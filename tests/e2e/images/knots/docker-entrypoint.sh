#!/bin/sh
# btcpayserver/dockerfile-deps BitcoinKnots/29.3.knots20260508/docker-entrypoint.sh, as a
# busybox script (upstream's is bash): for bitcoind and its tools it (re)writes
# $BITCOIN_DATA/bitcoin.conf on every start from BITCOIN_NETWORK and BITCOIN_EXTRA_ARGS (with
# printtoconsole=1 and rpcallowip=::/0), takes ownership of the data dir, deletes settings.json
# and runs the program as bitcoin (999) with gosu, which needs CHOWN, SETUID, SETGID. Anything
# else is exec'd as is, as root.
set -e
case ${1:-} in
  bitcoin-cli|bitcoin-tx|bitcoind|test_bitcoin) ;;
  *) exec "$@" ;;
esac
mkdir -p "$BITCOIN_DATA"
case ${BITCOIN_NETWORK:-mainnet} in
  regtest) prefix='regtest=1
[regtest]' ;;
  testnet) prefix='testnet=1
[test]' ;;
  signet) prefix='signet=1
[signet]' ;;
  *) prefix='mainnet=1
[main]' ;;
esac
cat >"$BITCOIN_DATA/bitcoin.conf" <<CONF
$prefix
printtoconsole=1
rpcallowip=::/0
${BITCOIN_EXTRA_ARGS:-}
CONF
chown bitcoin:bitcoin "$BITCOIN_DATA/bitcoin.conf"
chown -R bitcoin "$BITCOIN_DATA"
rm -f /home/bitcoin/.bitcoin/settings.json
exec gosu bitcoin "$@"
