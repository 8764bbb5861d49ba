#!/bin/sh
# mempool/mempool v3.3.1 docker/frontend/entrypoint.sh, as far as its effects go (no `set -e`,
# as upstream): the backend's host and port are written into
# /etc/nginx/conf.d/nginx-mempool.conf, the listen port into /etc/nginx/nginx.conf (through
# /patch/nginx.conf), the browser's config.js from its template; then nginx is exec'd. It writes
# into the image's own files, so it needs a writable root and uid 1000, who owns them.
# (Upstream renders config.js with envsubst over ~38 variables; here the ones that choose the
# network: the *_ENABLED flags, defaults true for mainnet and false for the others, and
# ROOT_NETWORK, default empty, as v3.3.1's entrypoint sets them.)
__MEMPOOL_BACKEND_MAINNET_HTTP_HOST__=${BACKEND_MAINNET_HTTP_HOST:=127.0.0.1}
__MEMPOOL_BACKEND_MAINNET_HTTP_PORT__=${BACKEND_MAINNET_HTTP_PORT:=8999}
__MEMPOOL_FRONTEND_HTTP_PORT__=${FRONTEND_HTTP_PORT:=8080}
sed -i "s/__MEMPOOL_BACKEND_MAINNET_HTTP_HOST__/${__MEMPOOL_BACKEND_MAINNET_HTTP_HOST__}/g" /etc/nginx/conf.d/nginx-mempool.conf
sed -i "s/__MEMPOOL_BACKEND_MAINNET_HTTP_PORT__/${__MEMPOOL_BACKEND_MAINNET_HTTP_PORT__}/g" /etc/nginx/conf.d/nginx-mempool.conf
cp /etc/nginx/nginx.conf /patch/nginx.conf
sed -i "s/__MEMPOOL_FRONTEND_HTTP_PORT__/${__MEMPOOL_FRONTEND_HTTP_PORT__}/g" /patch/nginx.conf
cat /patch/nginx.conf > /etc/nginx/nginx.conf
folder=/var/www/mempool/browser/resources
sed -e "s/\${MAINNET_ENABLED}/${MAINNET_ENABLED:-true}/" -e "s/\${ROOT_NETWORK}/${ROOT_NETWORK:-}/" \
  -e "s/\${TESTNET_ENABLED}/${TESTNET_ENABLED:-false}/" -e "s/\${TESTNET4_ENABLED}/${TESTNET4_ENABLED:-false}/" \
  -e "s/\${SIGNET_ENABLED}/${SIGNET_ENABLED:-false}/" -e "s/\${REGTEST_ENABLED}/${REGTEST_ENABLED:-false}/" \
  -e "s/\${BASE_MODULE}/${BASE_MODULE:-mempool}/" "$folder/config.template.js" > "$folder/config.js"
exec "$@"
