#!/usr/bin/env bash
# Installs the Debian 12 packages that building, testing and benchmarking Spillway need.
# Idempotent: packages already installed are skipped, and apt-get runs only when
# something is missing. Runs as root (as on CI and a fresh machine) or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libnghttp2-dev libabsl-dev libhttp-parser-dev libssl-dev libisal-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl nghttp2-client nghttp2-server iperf3 netcat-openbsd python3
  openssl  # tests/integration/tls_test.cc makes its self-signed certificate
  python3-grpcio python3-protobuf  # the Python gRPC consumer in the integration tests
  python3-yaml  # tests/integration/check_manifests.py parses docker/ manifests
)
# clang brings the libFuzzer target (make fuzz); optional for everything else.
if [[ "${SPILLWAY_SETUP_FUZZ:-1}" == 1 ]]; then
  packages+=(clang libclang-rt-14-dev)
fi
# The reference servers of make bench (bench/load_http.sh): Go with golang.org/x/net
# (bench/go_multipart_server.go) and nginx. Only make bench asks for them.
if [[ "${SPILLWAY_SETUP_BENCH:-0}" == 1 ]]; then
  packages+=(golang-go golang-golang-x-net-dev nginx-light)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where systemd runs, Debian starts nginx's default site on port 80 at install. The
# benchmark starts its own nginx on a free loopback port, so the service is turned off
# again -- only when this run installed it.
if [[ " ${missing[*]} " == *" nginx-light "* && -d /run/systemd/system ]]; then
  $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
  echo "setup: nginx installed for make bench; its system service is disabled" >&2
fi
