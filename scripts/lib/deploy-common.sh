# Shared by scripts/deploy.sh and scripts/deploy_batch.sh (sourced, not run). Expects ROOT (the
# repository) and DRY_RUN (true|false) to be set by the script.
# shellcheck shell=bash

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
