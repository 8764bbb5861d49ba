# `sandbox.sh shell`: an interactive shell inside the test bed, for debugging.
echo "inside the sandbox: as_node CMD runs as the user; exit to tear it down" >&2
exec bash -i
