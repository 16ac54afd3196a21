# Shared by scripts/deploy.sh and scripts/deploy_batch.sh (sourced, not run). Expects ROOT (the
# repository) and DRY_RUN (true|false) to be set by the script.
# shellcheck shell=bash

# The project's Node 24 (npm ci installs it as node_modules/.bin/node) comes first: the scripts run
# the CLI's .ts sources, which the system's Node (20 on Debian) cannot run.
PATH=$ROOT/node_modules/.bin:$PATH
export PATH

log() { printf '==> %s\n' "$*" >&2; }

# An argument as the shell reads it back: as is when plain, else in single quotes.
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Runs a command, or prints it (after "+ ") with --dry-run.
run() {
  if $DRY_RUN; then
    printf '+'
    for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
    printf '\n'
  else
    "$@"
  fi
}

# capture NAME PLACEHOLDER COMMAND...: sets NAME to what the command prints; with --dry-run, prints
# the command instead (like run) and sets NAME to PLACEHOLDER.
# shellcheck disable=SC2034 # into_ is a nameref: assigning it sets the caller's NAME.
capture() {
  local -n into_=$1
  local placeholder=$2
  shift 2
  if $DRY_RUN; then
    run "$@"
    into_=$placeholder
  else
    into_=$("$@")
  fi
}

# Writes a file, or prints the command that would (a heredoc) with --dry-run.
write_file() {
  local path=$1 content=$2
  if $DRY_RUN; then
    printf "+ cat > %s <<'EOF'\n%s\nEOF\n" "$(quote "$path")" "$content"
  else
    mkdir -p "$(dirname "$path")"
    printf '%s\n' "$content" >"$path"
  fi
}

default_tag() {
  local commit
  if ! commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
    date -u +%Y%m%d%H%M%S
  elif [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then
    printf '%s-dirty-%s\n' "$commit" "$(date -u +%Y%m%d%H%M%S)"
  else
    printf '%s\n' "$commit"
  fi
}
