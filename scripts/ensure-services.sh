#!/usr/bin/env bash
# Makes sure the local servers the integration tests and local mode use are installed and running:
# PostgreSQL (127.0.0.1:5432, trust auth, database "test") and RabbitMQ (127.0.0.1:5672, guest/guest,
# management API on 127.0.0.1:15672).
# Idempotent; installs with apt-get on a fresh Debian machine (needs root).
set -euo pipefail

log() { printf '[ensure-services] %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "cannot install $* without root: install them yourself (see README)"
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # description, tries, command...
  local what=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "$what did not become ready"
  return 1
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log 'installing PostgreSQL'
    apt_install postgresql
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    log 'starting PostgreSQL'
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for PostgreSQL 30 pg_isready -h 127.0.0.1 -p 5432
  fi
  # Trust auth for loopback and a "test" database, as the tests expect.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    local hba
    hba=$(find /etc/postgresql -name pg_hba.conf | sort -V | tail -1)
    log "enabling trust auth for loopback in $hba"
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    su postgres -c "psql -tAc 'select pg_reload_conf()'" >/dev/null
  fi
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
  fi
  log 'PostgreSQL ready'
}

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log 'installing RabbitMQ'
    apt_install rabbitmq-server
  fi
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    log 'starting RabbitMQ'
    rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_for RabbitMQ 60 rabbitmqctl -q await_startup
  fi
  # The management API (15672) reports unacknowledged (in-flight) counts for queue depth and KEDA.
  if ! curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1; then
    log 'enabling the RabbitMQ management plugin'
    rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
    wait_for 'RabbitMQ management API' 60 curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview
  fi
  log 'RabbitMQ ready'
}

command -v curl >/dev/null 2>&1 || apt_install curl

services=("$@")
if [ ${#services[@]} -eq 0 ]; then services=(postgres rabbitmq); fi
for s in "${services[@]}"; do
  case "$s" in
    postgres) ensure_postgres ;;
    rabbitmq) ensure_rabbitmq ;;
    *)
      log "unknown service $s"
      exit 2
      ;;
  esac
done
