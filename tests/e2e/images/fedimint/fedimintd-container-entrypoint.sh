#!/usr/bin/env bash
# The stand-in image's misc/fedimintd-container-entrypoint.sh (fedimint/fedimint), written for
# this test bed after the copies of it read (the 0.11.1 one could not be read; later copies
# dropped the FM_PASSWORD requirement older ones had, as 0.11's setup UI takes the password):
# - any arguments are exec'd as they are (archy passes `fedimintd --data-dir /data`)
# - else FM_DATA_DIR is required, created (chmod 0600) when missing, and fedimintd runs with
#   it, not exec'd: bash stays PID 1

if [ -n "$*" ]; then
 exec "$@"
fi

if [ -z "$FM_DATA_DIR" ]; then
  1>&2 echo "Must provide FM_DATA_DIR environment variable"
  exit 1
fi

if [ ! -e "$FM_DATA_DIR" ]; then
  1>&2 echo "Creating $FM_DATA_DIR"
  mkdir -p "$FM_DATA_DIR" && chmod 0600 "$FM_DATA_DIR"
fi

mkdir -p "$FM_DATA_DIR"

1>&2 echo 'Starting fedimintd'
fedimintd --data-dir "$FM_DATA_DIR/"
