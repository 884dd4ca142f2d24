#!/bin/sh
# Runs every fuzz target for FUZZTIME (default 30s) and keeps what it
# learned: Go stores new interesting inputs in its build cache, so they are
# copied into the package's testdata/fuzz/<target>, where `go test` replays
# them as regression cases and git keeps them.
set -eu
FUZZTIME=${FUZZTIME:-30s}
cache=$(go env GOCACHE)/fuzz/$(go list -m)
for target in configs:FuzzParse configs:FuzzDecodeEnvelope detect:FuzzParseRule sensors:FuzzCSVReader; do
	pkg=${target%%:*}
	name=${target#*:}
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "./$pkg"
	if [ -d "$cache/$pkg/$name" ]; then
		mkdir -p "$pkg/testdata/fuzz/$name"
		cp -n "$cache/$pkg/$name"/* "$pkg/testdata/fuzz/$name/"
	fi
done
