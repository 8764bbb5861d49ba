#!/bin/sh
# The stand-in image's /init.sh: the steps of upstream's docker/alpine/init.sh
# (filebrowser/filebrowser v2.63.23), written for this test bed:
# - /config/settings.json is seeded from /defaults/settings.json (cp -a) when missing
# - without -c/--config (as `-c FILE`, `-c=FILE`, `--config FILE`, `--config=FILE`) the
#   arguments get --config=/config/settings.json in front
# - then filebrowser is exec'd with them
set -e

if [ ! -f /config/settings.json ]; then
  cp -a /defaults/settings.json /config/settings.json
fi

given=""
want_value=0
for arg in "$@"; do
  if [ "$want_value" -eq 1 ]; then given=$arg; break; fi
  case $arg in
    -c|--config) want_value=1 ;;
    -c=*|--config=*) given=${arg#*=}; break ;;
  esac
done

if [ -z "$given" ]; then
  set -- --config=/config/settings.json "$@"
fi

exec filebrowser "$@"
