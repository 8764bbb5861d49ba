#!/bin/sh
# The stand-in image's /healthcheck.sh: upstream's docker/alpine/healthcheck.sh (filebrowser/
# filebrowser v2.63.23) step for step: FB_PORT, else settings.json's "port"; FB_ADDRESS, else
# its "address", else localhost (both read with JSON.sh); then busybox wget --spider /health.
set -e

PORT=${FB_PORT:-$(sh /JSON.sh < /config/settings.json | grep '\["port"\]' | awk '{print $2}')}
ADDRESS=${FB_ADDRESS:-$(sh /JSON.sh < /config/settings.json | grep '\["address"\]' | awk '{print $2}' | sed 's/"//g')}
ADDRESS=${ADDRESS:-localhost}

wget -q --spider "http://$ADDRESS:$PORT/health" || exit 1
