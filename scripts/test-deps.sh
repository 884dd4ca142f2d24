#!/bin/sh
# Installs what `make test` needs beyond Go, on Debian/Ubuntu: the Mosquitto
# broker (the MQTT tests start their own on a loopback port) and a C
# toolchain (the race detector needs cgo); with --arm64, also
# qemu-user-static for `make test-arm64`. Does nothing when all are there.
set -eu

missing=""
if [ "${1:-}" = --arm64 ] && ! command -v qemu-aarch64-static >/dev/null 2>&1; then
	missing="$missing qemu-user-static"
fi
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
	missing="$missing mosquitto"
fi
if ! command -v gcc >/dev/null 2>&1; then
	missing="$missing gcc libc6-dev"
fi
[ -z "$missing" ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "test-deps: need$missing; install them as root: apt-get install -y$missing" >&2
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: need$missing; install them with your package manager" >&2
	exit 1
fi
echo "test-deps: installing$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
