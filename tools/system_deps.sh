#!/usr/bin/env bash
# The system tools the tests use that pip cannot install: Prometheus's `prometheus` and
# `promtool` (the alert rules' tests and a real scrape of the served Bento). make test runs
# this once (make system-deps). On Debian or Ubuntu it installs the distribution's
# prometheus package (as root, or with passwordless sudo) and stops the daemon the package
# starts: the tests run their own, on loopback. Elsewhere it says what to install.
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the tests need prometheus and promtool on PATH (e.g. brew install prometheus," \
    "or the release from prometheus.io/download)" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "error: the tests need prometheus and promtool: sudo apt-get install prometheus" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
install=("${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus)
"${install[@]}" >/dev/null 2>&1 || { "${sudo[@]}" apt-get update -qq && "${install[@]}" >/dev/null; }
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  "${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null && command -v prometheus >/dev/null
