#!/usr/bin/env bash
# Installs what `make test` needs besides Go on Debian bookworm: gcc and libc6-dev (the race detector
# needs cgo), make, ca-certificates, promtool and prometheus (package prometheus), amtool and
# prometheus-alertmanager (package prometheus-alertmanager), and chromium with a font for headless
# browser tests. Does nothing, fast, when everything is present. Used by `make deps`
# (which `make test` runs first) and .ci/run.
set -euo pipefail

# package:proof, where proof is a command on PATH or an absolute file path.
checks=(
  # go test -race needs cgo: a C compiler and the C library's headers.
  gcc:gcc
  libc6-dev:/usr/include/stdio.h
  make:make
  ca-certificates:/etc/ssl/certs/ca-certificates.crt
  prometheus:promtool
  prometheus:prometheus
  prometheus-alertmanager:amtool
  prometheus-alertmanager:prometheus-alertmanager
  chromium:chromium
  # chromium-common only recommends a font, and --no-install-recommends skips it; without any font
  # headless chromium renders no text.
  fonts-liberation:/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf
)

missing=()
for check in "${checks[@]}"; do
  pkg=${check%%:*} proof=${check#*:}
  if [[ $proof == /* ]]; then [ -e "$proof" ] && continue; else command -v "$proof" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

say() { echo "install-test-deps: $*" >&2; }
say "about to install Debian packages: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  say "apt-get not found: this script supports Debian bookworm only; install ${missing[*]} (or equivalents) yourself."
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  say "root is needed to install packages, and passwordless sudo is not available. Run as root:"
  echo "  $(cd "$(dirname "$0")" && pwd)/$(basename "$0")" >&2
  say "(or install them yourself: apt-get update && apt-get install --no-install-recommends ${missing[*]})"
  exit 1
fi

# Packages must not start their services (prometheus, alertmanager) on install: a policy-rc.d that
# exits 101 forbids it. Remove it afterwards only if this script created it.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi

apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
"${apt[@]}" update
"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
say "installed: ${missing[*]}"
