#!/usr/bin/env bash
# Makes sure the tools the tests run are installed:
#   - Chromium: the dashboard's browser test drives Debian's /usr/bin/chromium with playwright-core;
#   - ShellCheck: infra/test/scripts.test.ts lints the deploy scripts with it;
#   - kubectl: infra/test/k8s.test.ts and scripts.test.ts render the manifests with its built-in
#     kustomize (`kubectl kustomize`), the one `kubectl apply -k` uses.
# Idempotent. Installs what is missing when run as root on Debian or Ubuntu: chromium and shellcheck
# with apt-get, kubectl from the Kubernetes release downloads (dl.k8s.io, checksum verified), since
# Debian has no kubectl package. Otherwise it says what to install and exits 1.
# Usage: bash scripts/ensure-tools.sh     (KUBECTL_VERSION=v1.x.y picks the kubectl it installs)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly KUBECTL_VERSION=${KUBECTL_VERSION:-v1.32.4}

log() { printf '[ensure-tools] %s\n' "$*"; }

is_root() { [[ $(id -u) -eq 0 ]]; }

apt_install() {
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  if [[ -z ${APT_UPDATED:-} ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_shellcheck() {
  if ! command -v shellcheck >/dev/null 2>&1; then
    log 'installing shellcheck'
    apt_install shellcheck || {
      log 'shellcheck is missing: install it (apt-get install shellcheck, brew install shellcheck)'
      return 1
    }
  fi
  log "shellcheck $(shellcheck --version | sed -n 's/^version: //p')"
}

install_kubectl() {
  is_root || return 1
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates || return 1
  local arch
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) return 1 ;;
  esac
  local url="https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/$arch/kubectl" dir
  dir=$(mktemp -d)
  log "installing kubectl $KUBECTL_VERSION from $url"
  if curl -fsSLo "$dir/kubectl" "$url" &&
    curl -fsSLo "$dir/kubectl.sha256" "$url.sha256" &&
    (cd "$dir" && printf '%s  kubectl\n' "$(cat kubectl.sha256)" | sha256sum --check --quiet); then
    install -m 0755 "$dir/kubectl" /usr/local/bin/kubectl
    rm -rf "$dir"
  else
    rm -rf "$dir"
    return 1
  fi
}

ensure_kubectl() {
  if ! command -v kubectl >/dev/null 2>&1; then
    install_kubectl || {
      log 'kubectl is missing, and Debian has no package for it. Install it from'
      log '  https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ (the binary or the'
      log '  pkgs.k8s.io apt repository), brew install kubectl, or the Google Cloud SDK; or run this'
      log '  script as root with network access to dl.k8s.io.'
      return 1
    }
  fi
  # Both overlays must render: this is exactly what the tests do.
  for overlay in azure local; do
    kubectl kustomize "k8s/overlays/$overlay" >/dev/null || {
      log "kubectl kustomize k8s/overlays/$overlay failed: kubectl (and its kustomize) may be too old"
      return 1
    }
  done
  log "kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p'), kustomize $(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p')"
}

ensure_chromium() {
  if [[ ! -x /usr/bin/chromium ]]; then
    log 'installing chromium'
    apt_install chromium || {
      log 'chromium is missing: install it (apt-get install chromium); the dashboard test needs /usr/bin/chromium'
      return 1
    }
  fi
  log "$(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
}

status=0
ensure_chromium || status=1
ensure_shellcheck || status=1
ensure_kubectl || status=1
exit "$status"
