#!/usr/bin/env bash
# Run in a sandbox by the boot-chain scenario when the stand-in image archives are not cached:
# the sandbox builds and caches them (images/build.sh) before this runs; this lists them.
set -euo pipefail
as_node podman images --format '{{.Repository}}:{{.Tag}}'
