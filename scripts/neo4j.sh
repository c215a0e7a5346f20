#!/usr/bin/env bash
# A local Neo4j Community server for kgdistill's tests and benchmarks, built from Maven Central jars.
#
#   scripts/neo4j.sh install   fetch the jars once into the cache (idempotent; Maven Central only)
#   scripts/neo4j.sh start     start on 127.0.0.1:$NEO4J_PORT with a throw-away data folder; wait until Bolt answers
#   scripts/neo4j.sh stop      stop it and delete the throw-away data folder
#   scripts/neo4j.sh status    "running" + its URI (exit 0), or "not running" (exit 3)
#   scripts/neo4j.sh env       export lines for KGDISTILL_NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD (eval them)
#   scripts/neo4j.sh restart   stop + start
#
# Settings (environment):
#   NEO4J_VERSION   Neo4j version (default 5.26.30, the 5.26 LTS line, Java 17; 2025.x/2026.x run on Temurin 25)
#   NEO4J_PORT      Bolt port (default 17687)
#   NEO4J_USER / NEO4J_PASSWORD   credentials the server is set up with (default neo4j / kgdistill-local);
#                   NEO4J_AUTH=none turns authentication off
#   NEO4J_HEAP      JVM heap (default 1g)        NEO4J_PAGECACHE   page cache (default 64m)
#   NEO4J_DATA      keep the database in this folder across stop/start (default: throw-away folder)
#   NEO4J_STATE     folder for pid, log and (throw-away) data (default ${TMPDIR:-/tmp}/kgdistill-neo4j-$NEO4J_PORT)
#   NEO4J_JAVA      java binary (default: `java` for 5.x, Temurin 25 for newer lines)
#   KGDISTILL_CACHE cache root (default ${XDG_CACHE_HOME:-~/.cache}/kgdistill); jars go to neo4j-<version>/lib
#   NEO4J_START_TIMEOUT  seconds to wait for Bolt (default 90)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC_DIR="$HERE/neo4j"
VERSION="${NEO4J_VERSION:-5.26.30}"
PORT="${NEO4J_PORT:-17687}"
CACHE="${KGDISTILL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kgdistill}"
INSTALL="$CACHE/neo4j-$VERSION"
LIB="$INSTALL/lib"
CLASSES="$INSTALL/classes"
STATE="${NEO4J_STATE:-${TMPDIR:-/tmp}/kgdistill-neo4j-$PORT}"
PIDFILE="$STATE/server.pid"
LOG="$STATE/server.log"
HEAP="${NEO4J_HEAP:-1g}"
USER_NAME="${NEO4J_USER:-neo4j}"
PASSWORD="${NEO4J_PASSWORD:-kgdistill-local}"
[[ "${NEO4J_AUTH:-}" == "none" ]] && PASSWORD=""
URI="bolt://127.0.0.1:$PORT"
START_TIMEOUT="${NEO4J_START_TIMEOUT:-90}"

die() { echo "neo4j.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "NEO4J_PORT must be a number, got '$PORT'"
[[ "$VERSION" =~ ^[0-9A-Za-z.-]+$ ]] || die "NEO4J_VERSION looks wrong: '$VERSION'"

pick_java() {
  if [[ -n "${NEO4J_JAVA:-}" ]]; then echo "$NEO4J_JAVA"; return; fi
  if [[ "$VERSION" == 5.* || "$VERSION" == 4.* ]]; then echo java; return; fi
  local t
  for t in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk-*; do
    [[ -x "$t/bin/java" ]] && { echo "$t/bin/java"; return; }
  done
  echo java
}
JAVA="$(pick_java)"
JAVAC=""
need_java() {
  command -v "$JAVA" >/dev/null 2>&1 \
    || die "java not found ('$JAVA'): Neo4j $VERSION needs a JDK (17 for 5.26, 21+ for 2025.x, 25 for 2025.10+); set NEO4J_JAVA"
  JAVAC="$(dirname "$(readlink -f "$(command -v "$JAVA")")")/javac"
}

installed() { [[ -f "$INSTALL/.complete" && -d "$LIB" ]]; }

JVM_FLAGS=(-XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Dfile.encoding=UTF-8
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
  --enable-native-access=ALL-UNNAMED)

compile_server() {
  # Compile Server.java once per content into server.jar (`java Server.java` would recompile on every start;
  # a jar rather than a class folder lets the JVM use a class-data-sharing archive).
  local sum; sum="$(sha256sum "$SRC_DIR/Server.java" | cut -c1-16)"
  if [[ -f "$CLASSES/server.jar" && "$(cat "$CLASSES/.sha" 2>/dev/null)" == "$sum" ]]; then return; fi
  [[ -x "$JAVAC" && -x "$(dirname "$JAVAC")/jar" ]] || { rm -rf "$CLASSES"; return; }  # no JDK: source launcher
  rm -rf "$CLASSES.tmp" && mkdir -p "$CLASSES.tmp/c"
  "$JAVAC" -nowarn -cp "$LIB/*" -d "$CLASSES.tmp/c" "$SRC_DIR/Server.java"
  "$(dirname "$JAVAC")/jar" cf "$CLASSES.tmp/server.jar" -C "$CLASSES.tmp/c" .
  rm -rf "$CLASSES.tmp/c"
  echo "$sum" > "$CLASSES.tmp/.sha"
  rm -rf "$CLASSES" && mv "$CLASSES.tmp" "$CLASSES"
}

cds_archive() {
  # One class-data-sharing archive per (java, server.jar): JVM start-up of the 200-jar server ~30% faster.
  local id; id="$( { "$JAVA" -version 2>&1; cat "$CLASSES/.sha" 2>/dev/null; } | sha256sum | cut -c1-12)"
  echo "$INSTALL/cds-$id.jsa"
}

make_cds() {
  # Best effort: start the server once on a spare port with -XX:ArchiveClassesAtExit, stop it, keep the archive.
  [[ -f "$CLASSES/server.jar" ]] || return 0
  local jsa; jsa="$(cds_archive)"
  [[ -f "$jsa" ]] && return 0
  local port=27687
  while timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; do port=$((port + 1)); done
  local tmp; tmp="$(mktemp -d)"
  local t0; t0="$(now)"
  NEO4J_PAGECACHE=16m "$JAVA" -XX:ArchiveClassesAtExit="$tmp/a.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off \
      -Xmx512m "${JVM_FLAGS[@]}" -cp "$CLASSES/server.jar:$LIB/*" Server "$tmp/home" "$port" > "$tmp/log" 2>&1 &
  local pid=$!
  local i
  for i in $(seq 1 900); do grep -q '^READY' "$tmp/log" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -s "$tmp/a.jsa" ]]; then
    rm -f "$INSTALL"/cds-*.jsa
    mv "$tmp/a.jsa" "$jsa"
    echo "Class-data-sharing archive for faster starts: $jsa ($(elapsed "$t0") s)"
  else
    echo "neo4j.sh: no class-data-sharing archive (starts will be slower); see $tmp/log" >&2
    return 0
  fi
  rm -rf "$tmp"
}

cmd_install() {
  need_java
  if installed; then
    compile_server
    make_cds
    echo "Neo4j $VERSION already installed in $LIB ($(ls "$LIB" | wc -l) jars)"
    return
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Neo4j from Maven Central"
  local t0; t0="$(now)"
  mkdir -p "$INSTALL"
  rm -rf "$LIB.tmp"
  echo "Fetching Neo4j $VERSION from Maven Central into $LIB ..."
  if ! mvn -B -Dstyle.color=never -f "$SRC_DIR/pom.xml" -Dneo4j.version="$VERSION" -Dmaven.repo.local="$CACHE/m2" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" > "$INSTALL/mvn.log" 2>&1; then
    grep -E "ERROR|BUILD" "$INSTALL/mvn.log" | head -n 5 >&2
    die "fetching Neo4j $VERSION from Maven Central failed (log: $INSTALL/mvn.log)"
  fi
  [[ -n "$(ls "$LIB.tmp"/neo4j-bolt-*.jar 2>/dev/null)" ]] || die "no neo4j-bolt jar after fetching Neo4j $VERSION"
  rm -rf "$LIB" && mv "$LIB.tmp" "$LIB"
  compile_server
  date -u +%FT%TZ > "$INSTALL/.complete"
  echo "Fetched Neo4j $VERSION ($(ls "$LIB" | wc -l) jars, $(du -sh "$LIB" | cut -f1)) in $(elapsed "$t0") s"
  make_cds
  echo "Installed Neo4j $VERSION in $(elapsed "$t0") s"
}

pid_alive() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

bolt_answers() {
  # Bolt handshake: magic 0x6060B017, then four proposals (5.0-5.8, 4.4, none, none); any 4-byte reply means a live server.
  local reply
  reply="$(timeout 5 bash -c '
      exec 3<>/dev/tcp/127.0.0.1/'"$PORT"' || exit 1
      printf "\x60\x60\xb0\x17\x00\x08\x08\x05\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00" >&3
      head -c 4 <&3 | od -An -tx1 | tr -d " \n"' 2>/dev/null)" || return 1
  [[ ${#reply} -eq 8 ]]
}

port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; }

cmd_start() {
  if pid_alive && bolt_answers; then
    echo "Neo4j already running (pid $(cat "$PIDFILE")) at $URI"
    return
  fi
  need_java
  installed || cmd_install
  compile_server
  port_busy && die "port $PORT on 127.0.0.1 is taken by another program; set NEO4J_PORT"
  mkdir -p "$STATE"
  local home
  if [[ -n "${NEO4J_DATA:-}" ]]; then
    home="$NEO4J_DATA"
  else
    home="$STATE/home"
    rm -rf "$home"
  fi
  mkdir -p "$home"
  local cp main cds=()
  if [[ -f "$CLASSES/server.jar" ]]; then
    cp="$CLASSES/server.jar:$LIB/*"; main=(Server)
    local jsa; jsa="$(cds_archive)"
    rm -f "$STATE/cds.jsa.tmp" "$STATE/cds.target"
    if [[ -f "$jsa" ]]; then
      cds=(-XX:SharedArchiveFile="$jsa" -Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off)
    else  # no archive for this java + server.jar yet: this run writes one when it stops (see cmd_stop)
      mkdir -p "$STATE"
      cds=(-XX:ArchiveClassesAtExit="$STATE/cds.jsa.tmp" -Xlog:cds=off -Xlog:cds+dynamic=off)
      echo "$jsa" > "$STATE/cds.target"
    fi
  else
    cp="$LIB/*"; main=("$SRC_DIR/Server.java")
  fi
  local t0; t0="$(now)"
  : > "$LOG"
  NEO4J_USER="$USER_NAME" NEO4J_PASSWORD="$PASSWORD" NEO4J_PAGECACHE="${NEO4J_PAGECACHE:-64m}" \
  setsid nohup "$JAVA" "${cds[@]}" -Xms256m -Xmx"$HEAP" "${JVM_FLAGS[@]}" \
      -cp "$cp" "${main[@]}" "$home" "$PORT" >> "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  echo "$URI" > "$STATE/uri"
  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  until grep -q '^READY' "$LOG" && bolt_answers; do
    if ! pid_alive; then
      tail -n 30 "$LOG" >&2
      rm -f "$PIDFILE"
      die "Neo4j $VERSION exited during start-up (log: $LOG)"
    fi
    if (( $(date +%s) > deadline )); then
      tail -n 30 "$LOG" >&2
      cmd_stop >/dev/null 2>&1 || true
      die "Neo4j did not answer on $URI within ${START_TIMEOUT}s (log: $LOG)"
    fi
    sleep 0.2
  done
  echo "Neo4j $VERSION ready at $URI (pid $(cat "$PIDFILE"), started in $(elapsed "$t0") s, heap $HEAP, data $home)"
}

cmd_stop() {
  if pid_alive; then
    local pid; pid="$(cat "$PIDFILE")"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "Neo4j (pid $pid) did not stop in 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "Neo4j stopped (pid $pid)"
    if [[ -s "$STATE/cds.jsa.tmp" && -f "$STATE/cds.target" ]]; then
      local target; target="$(cat "$STATE/cds.target")"
      rm -f "$(dirname "$target")"/cds-*.jsa
      mv "$STATE/cds.jsa.tmp" "$target" && echo "Saved a class-data-sharing archive for faster starts: $target"
    fi
  else
    echo "Neo4j not running on port $PORT"
  fi
  rm -f "$PIDFILE" "$STATE/cds.jsa.tmp" "$STATE/cds.target"
  [[ -z "${NEO4J_DATA:-}" ]] && rm -rf "$STATE/home"
  return 0
}

cmd_status() {
  if pid_alive && bolt_answers; then
    echo "running (pid $(cat "$PIDFILE"), Neo4j $VERSION)"
    echo "KGDISTILL_NEO4J_URI=$URI"
    return 0
  fi
  echo "not running ($URI)"
  return 3
}

cmd_env() {
  echo "export KGDISTILL_NEO4J_URI=$URI"
  if [[ -n "$PASSWORD" ]]; then
    echo "export NEO4J_USER=$(printf %q "$USER_NAME")"
    echo "export NEO4J_PASSWORD=$(printf %q "$PASSWORD")"
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 install|start|stop|restart|status|env" >&2; exit 2 ;;
esac
