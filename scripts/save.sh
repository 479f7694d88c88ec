#!/usr/bin/env bash
# Saves every image the context embeds into <context>/registry, for the target arch only, in the layout `sealos run`
# serves: a distribution registry's filesystem storage. A registry on loopback writes it, so the layout is the one
# distribution itself reads; skopeo copies into it, several images at a time, and skips blobs it already holds.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

context=${CIMG_CONTEXT:?context is required}
arch=${CIMG_ARCH:-}
arch_ok "$arch"
[[ -d $context ]] || die "context '$context' is not a directory"
context=$(cd "$context" && pwd)
parallel=${CIMG_SAVE_PARALLEL:-4}
[[ $parallel =~ ^[1-9][0-9]*$ ]] || die "CIMG_SAVE_PARALLEL must be a positive integer, got '$parallel'"

# Most contexts embed nothing; they need no Python, no registry and no network.
if [[ ! -d $context/images/shim && ! -d $context/manifests && ! -d $context/charts &&
  ! -f $context/images/skopeo/tar.txt ]]; then
  log "no images/shim, manifests, charts or images/skopeo/tar.txt in $context: nothing to save"
  exit 0
fi

clusterimg_gen_venv "${CIMG_ACTION_PATH:-}"
list=$("$CIMG_GEN" images "$context" --format save) || die "could not list the embedded images of $context"
if [[ -z $list ]]; then
  log "$context embeds no images: nothing to save"
  exit 0
fi
command -v skopeo >/dev/null || die "skopeo not found on PATH; saving embedded images needs it"

registry=$(own_registry)
if [[ -n ${CIMG_USERNAME:-} ]]; then
  [[ -n $registry ]] || die "registry or image is required with username"
  registry_login "$registry"
fi

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimg-save.XXXXXX")
server=
stop_server() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
at_exit stop_server

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a registry storing under $1 on a free loopback port; sets port and server. docker-registry is distribution
# 2.8; sealos carries the same code as `sealos registry serve`.
start_server() {
  local root=$1 try config keep=()
  for var in $(compgen -e); do
    # The registry reads REGISTRY_* variables as its own settings.
    if [[ $var == REGISTRY_* ]]; then keep+=(-u "$var"); fi
  done
  for try in 1 2 3 4 5; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_open "$port" && continue
    if command -v docker-registry >/dev/null; then
      config=$work/registry.json
      printf '{"version":"0.1","log":{"level":"error","accesslog":{"disabled":true}},%s,%s}\n' \
        "\"storage\":{\"filesystem\":{\"rootdirectory\":\"$root\"},\"delete\":{\"enabled\":true}}" \
        "\"http\":{\"addr\":\"127.0.0.1:$port\"}" >"$config"
      env ${keep[@]+"${keep[@]}"} docker-registry serve "$config" >>"$work/registry.log" 2>&1 &
    elif command -v sealos >/dev/null; then
      env ${keep[@]+"${keep[@]}"} sealos registry serve filesystem -p "$port" --disable-logging=true "$root" \
        >>"$work/registry.log" 2>&1 &
    else
      die "saving embedded images needs docker-registry (Debian/Ubuntu package docker-registry) or sealos on PATH"
    fi
    server=$!
    for _ in $(seq 100); do
      port_open "$port" && return 0
      kill -0 "$server" 2>/dev/null || break
      sleep 0.1
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
    log "registry did not start on port $port (attempt $try/5): $(tail -n1 "$work/registry.log" 2>/dev/null)"
  done
  die "could not start a registry on loopback to save into $root/registry"
}

# skopeo's last line without its logger's time= and level= fields.
skopeo_error() {
  local last
  last=$(tail -n1 "$1")
  if [[ $last =~ msg=\"(.*)\"$ ]]; then last=${BASH_REMATCH[1]//\\\"/\"}; fi
  printf '%s\n' "$last"
}

# One attempt at copying $1 to $2 on the loopback registry. An answer that asking again cannot change is written to
# $3.final and ends the retries.
copy_once() {
  local src=$1 name=$2 out=$3 tls=()
  # tls-verify: false is for the configured registry only; every upstream registry is verified.
  if [[ $CIMG_TLS_VERIFY == false && $src == docker://* && $(registry_of "${src#docker://}") == "$registry" ]]; then
    tls=(--src-tls-verify=false)
  fi
  if priv "${NET[@]}" skopeo --override-os linux --override-arch "$arch" copy --quiet ${tls[@]+"${tls[@]}"} \
    --dest-tls-verify=false --digestfile "$out.digest" "$src" "docker://127.0.0.1:$port/$name" 2>"$out.log"; then
    return 0
  fi
  log "$(skopeo_error "$out.log")"
  if grep -Eq 'no image found in (manifest list|image index)' "$out.log"; then
    printf 'has no linux/%s image\n' "$arch" >"$out.final"
  elif grep -Eq 'manifest unknown|name unknown|no such file' "$out.log"; then
    printf 'not found: %s\n' "$(skopeo_error "$out.log")" >"$out.final"
  else
    return 1
  fi
  return "$NO_RETRY"
}

# os/architecture of the image manifest $1 as stored under registry/, read from the files distribution wrote.
stored_platform() {
  local blobs=$context/registry/docker/registry/v2/blobs manifest config os
  blob() { printf '%s/%s/%s/%s/data' "$blobs" "${1%%:*}" "${1:7:2}" "${1#*:}"; }
  manifest=$(<"$(blob "$1")") || return 1
  [[ $manifest =~ \"config\":[[:space:]]*\{[^}]*\"digest\":[[:space:]]*\"(sha256:[0-9a-f]{64})\" ]] || return 1
  config=$(<"$(blob "${BASH_REMATCH[1]}")") || return 1
  [[ $config =~ \"os\":[[:space:]]*\"([^\"]*)\" ]] && os=${BASH_REMATCH[1]} || os=unknown
  [[ $config =~ \"architecture\":[[:space:]]*\"([^\"]*)\" ]] || return 1
  printf '%s/%s\n' "$os" "${BASH_REMATCH[1]}"
}

# Saves one image and checks what was stored; writes $out.ok ("image@digest") or $out.err (one line).
save_one() {
  local src=$1 name=$2 out=$3 status=0 got what=$2 stored
  if [[ $src == docker://* ]]; then what=${src#docker://}; fi
  stored=docker://127.0.0.1:$port/$name
  retry copy_once "$src" "$name" "$out" || status=$?
  if ((status == NO_RETRY)); then
    printf '%s %s\n' "$what" "$(<"$out.final")" >"$out.err"
    return
  elif ((status)); then
    printf '%s could not be saved: %s\n' "$what" "$(skopeo_error "$out.log")" >"$out.err"
    return
  fi
  # skopeo takes a single-arch image whatever its arch; the stored config says what it really is.
  if ! got=$(stored_platform "$(<"$out.digest")"); then
    printf '%s was saved but its manifest or config cannot be read back from %s/registry\n' "$what" "$context" \
      >"$out.err"
    return
  fi
  if [[ $got != "linux/$arch" ]]; then
    # Untag it, so that a later run in the same context cannot embed it.
    priv skopeo delete --tls-verify=false "$stored" 2>/dev/null || true
    printf '%s is a single %s image, not linux/%s\n' "$what" "$got" "$arch" >"$out.err"
    return
  fi
  printf '%s@%s\n' "${what%@*}" "$(<"$out.digest")" >"$out.ok"
}

retry true # checks the retry settings here, not once per copy in the background
mkdir -p "$context/registry"
start_server "$context/registry"

count=$(wc -l <<<"$list")
copies() { jobs -rp | grep -cvx "$server" || true; } # the registry runs as a job too
group_start "save $count embedded image(s) for linux/$arch into $context/registry ($parallel at a time)"
n=0
while read -r src name; do
  [[ $src == docker://* ]] || src=${src%%:*}:$context/${src#*:} # an archive, named relative to the context
  # Fail fast: after the first failure start no more copies.
  if compgen -G "$work/*.err" >/dev/null; then break; fi
  while (($(copies) >= parallel)); do wait -n || true; done
  save_one "$src" "$name" "$work/$n" &
  n=$((n + 1))
done <<<"$list"
while (($(copies))); do wait -n || true; done
group_end

if compgen -G "$work/*.err" >/dev/null; then
  for err in "$work"/*.err; do printf 'error: %s\n' "$(<"$err")" >&2; done
  die "embedded images of $context not saved for linux/$arch; not building (save-images: false skips this step)"
fi
saved=$(cat "$work"/*.ok 2>/dev/null | LC_ALL=C sort)
(($(wc -l <<<"$saved") == count)) || die "some copies ended without a result; not building"
log "$saved"
log "saved $count embedded image(s) for linux/$arch into $context/registry"
set_output_lines images "$saved"
summary "Embedded images saved for linux/$arch:" '```' "$saved" '```'
