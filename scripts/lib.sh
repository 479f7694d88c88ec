# shellcheck shell=bash
# Shared helpers, sourced by every script here. Settings come only from CIMG_* env.

log() { printf '%s\n' "$*" >&2; }

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

on_actions() { [[ ${GITHUB_ACTIONS:-} == true ]]; }

warn() {
  if on_actions; then printf '::warning::%s\n' "$*"; else printf 'warning: %s\n' "$*" >&2; fi
}

# Hides secret $1 (named $2) in the job log from here on; refuses a line break, past which the log would show it.
mask() {
  [[ $1 != *[$'\r\n']* ]] || die "${2:-a secret} contains a line break; it must be one line"
  if on_actions; then printf '::add-mask::%s\n' "$1"; fi
}

group_start() { if on_actions; then printf '::group::%s\n' "$*"; else log "== $*"; fi; }
group_end() { if on_actions; then printf '::endgroup::\n'; fi; }

set_output() {
  if [[ -n ${GITHUB_OUTPUT:-} ]]; then printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; fi
}

# An output of several lines, in GitHub's NAME<<DELIMITER form.
set_output_lines() {
  local delimiter=CIMG_EOF_$RANDOM$RANDOM$RANDOM
  if [[ -n ${GITHUB_OUTPUT:-} ]]; then printf '%s<<%s\n%s\n%s\n' "$1" "$delimiter" "$2" "$delimiter" >>"$GITHUB_OUTPUT"; fi
}

summary() {
  if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"; fi
}

# Runs "$@" up to CIMG_RETRIES times, waiting CIMG_RETRY_DELAY seconds after the first failure and twice as long after
# each next one, up to CIMG_RETRY_MAX_DELAY (the package's registry lookups wait the same). A command that exits
# NO_RETRY has failed for good: asking again cannot help, so retry returns NO_RETRY at once.
NO_RETRY=99
retry() {
  local tries=$CIMG_RETRIES delay='' cap n=1 shown=("$@") what
  [[ $tries =~ ^[1-9][0-9]*$ ]] || die "retries must be a positive integer, got '$tries'"
  if [[ ${shown[0]} == priv ]]; then shown=("${shown[@]:1}"); fi
  if [[ ${shown[0]} == "${NET[0]}" ]]; then shown=("${shown[@]:${#NET[@]}}"); fi
  what=${shown[*]:0:3}
  until "$@"; do
    if (($? == NO_RETRY)); then return "$NO_RETRY"; fi
    if ((n >= tries)); then
      log "gave up after $n attempt(s): $what"
      return 1
    fi
    if [[ -z $delay ]]; then # read on the first failure only: most calls never need it
      if [[ -z ${CIMG_RETRY_DELAY:-} || -z ${CIMG_RETRY_MAX_DELAY:-} ]]; then load_defaults; fi
      delay=$CIMG_RETRY_DELAY cap=$CIMG_RETRY_MAX_DELAY
      [[ $delay =~ ^[0-9]+$ ]] || die "CIMG_RETRY_DELAY must be whole seconds, got '$delay'"
      [[ $cap =~ ^[0-9]+$ ]] || die "CIMG_RETRY_MAX_DELAY must be whole seconds, got '$cap'"
    fi
    log "attempt $n/$tries failed: $what; retrying in ${delay}s"
    sleep "$delay"
    n=$((n + 1))
    delay=$((delay * 2 > cap ? cap : delay * 2))
  done
}

# Runs the command "$@" when the script ends, after those given later. A signal ends the script as an exit would, so
# it runs then too. Scripts register cleanups here, never with `trap … EXIT`, which would drop the others.
_exit_cmds=()
at_exit() {
  _exit_cmds=("$(printf '%q ' "$@")" "${_exit_cmds[@]}")
  trap _run_exit_cmds EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
_run_exit_cmds() {
  local cmd
  for cmd in "${_exit_cmds[@]}"; do eval "$cmd" || true; done
}

# Points REGISTRY_AUTH_FILE at a new file of this step's own, removed when the script ends: a self-hosted runner
# outlives its jobs, and no later job may find credentials on it. A REGISTRY_AUTH_FILE the caller set is theirs.
step_auth_file() {
  [[ -z ${REGISTRY_AUTH_FILE:-} ]] || return 0
  local dir
  # A directory of our own: a root-owned file in a sticky /tmp could not be removed by this user.
  dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimg-auth.XXXXXX") || die "cannot create an auth file"
  at_exit rm -rf "$dir"
  export REGISTRY_AUTH_FILE=$dir/auth.json
}

# Sets CIMG_GEN to clusterimg-gen: the one given, else the checkout at $1 run in a venv that holds exactly the
# hashed pins of its requirements/runner.txt, plus requirements/<name>.txt for each further argument (render, github).
clusterimg_gen_venv() {
  if [[ -n ${CIMG_GEN:-} ]]; then return 0; fi
  local root name files=() reqs=() venv stamp
  root=$(cd "$1" && pwd)
  for name in runner "${@:2}"; do
    files+=("$root/requirements/$name.txt")
    reqs+=(-r "$root/requirements/$name.txt")
  done
  venv=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimg-gen-venv
  if (($# > 1)); then venv+=$(printf -- '-%s' "${@:2}"); fi
  stamp=$(printf '%s\n' "$root" | cat - "${files[@]}" | sha256sum)
  if [[ -x $venv/bin/clusterimg-gen && -f $venv/.stamp && $(<"$venv/.stamp") == "$stamp" ]]; then
    CIMG_GEN=$venv/bin/clusterimg-gen
    return 0
  fi
  rm -rf "$venv"
  # No credential reaches pip or what it runs. A pip of the runner's own Python fills a venv made without one,
  # which saves seeding it (several seconds); an older pip, without --python, gets the seeded one.
  (
    unset CIMG_PASSWORD CIMG_USERNAME CIMG_TOKEN GITHUB_TOKEN GH_TOKEN REGISTRY_PASSWORD REGISTRY_USERNAME \
      ACTIONS_ID_TOKEN_REQUEST_TOKEN
    python3 -m venv --without-pip "$venv" || exit
    pip=(python3 -m pip --python "$venv/bin/python")
    if ! "${pip[@]}" --version >/dev/null 2>&1; then
      "$venv/bin/python" -m ensurepip --default-pip >/dev/null || exit
      pip=("$venv/bin/python" -m pip)
    fi
    "${pip[@]}" install --quiet --disable-pip-version-check --no-input --require-hashes --no-deps \
      --only-binary=:all: "${reqs[@]}"
  ) || die "could not install clusterimg-gen's pinned requirements (${files[*]#"$root/"}) into $venv"
  # The package is the checkout itself, on a path entry as an editable install writes: nothing is built or fetched.
  "$venv/bin/python" -c 'import site, sys; open(site.getsitepackages()[0] + "/clusterimg.pth", "w").write(sys.argv[1])' \
    "$root/generator"
  printf '#!/bin/sh\nexec "%s" -m clusterimg "$@"\n' "$venv/bin/python" >"$venv/bin/clusterimg-gen"
  chmod +x "$venv/bin/clusterimg-gen"
  printf '%s' "$stamp" >"$venv/.stamp"
  CIMG_GEN=$venv/bin/clusterimg-gen
}

# The step's auth file on stdout, for the modules that read it on stdin: root wrote it when the login ran through sudo.
auth_json() { if [[ -n ${REGISTRY_AUTH_FILE:-} && -e $REGISTRY_AUTH_FILE ]]; then priv cat "$REGISTRY_AUTH_FILE"; fi; }

# `clusterimg-gen images CONTEXT ...`, answered by the standard library alone (nothing installed) unless the context
# has charts/, whose values need PyYAML.
images_of() {
  if [[ -d $1/charts ]]; then
    clusterimg_gen_venv "${CIMG_ACTION_PATH:-}"
    "$CIMG_GEN" images "$@"
  else
    py_module images "$@"
  fi
}

# Runs `python3 -m clusterimg.<module>` from this action's own files, for modules that need only the standard
# library: nothing is installed. The package sits beside scripts/ in a checkout, or above it in a wheel.
# `py_module priv <module> …` runs it as root, to read every file of a mounted image.
py_module() {
  local as=()
  if [[ $1 == priv ]]; then as=(priv) && shift; fi
  ${as[@]+"${as[@]}"} env PYTHONPATH="$(pkg_root)${PYTHONPATH:+:$PYTHONPATH}" "${CIMG_PYTHON:-python3}" -m "clusterimg.$1" "${@:2}"
}

pkg_root() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [[ -d $here/generator/clusterimg ]]; then printf '%s\n' "$here/generator"; else (cd "$here/../.." && pwd); fi
}

# Settings the caller left unset take their defaults from the package's data file, defaults.json, the file the action
# inputs' defaults follow. Its top-level scalars are read here without Python (the suite holds this reading to the
# package's), for the settings a script reads: CIMG_<KEY>.
load_defaults() {
  local line name value
  while IFS= read -r line; do
    [[ $line =~ ^\ \ \"([a-z_]+)\":\ \"?([^\",]*)\"?,?$ ]] || continue
    name=CIMG_${BASH_REMATCH[1]^^} value=${BASH_REMATCH[2]}
    case $name in
    CIMG_BUILDER | CIMG_TOOLS | CIMG_RETRIES | CIMG_TLS_VERIFY | CIMG_RETRY_DELAY | CIMG_RETRY_MAX_DELAY | CIMG_SAVE_PARALLEL) ;;
    *) continue ;;
    esac
    if [[ -z ${!name:-} ]]; then export "$name=$value"; fi
  done <"$(pkg_root)/clusterimg/defaults.json" || die "cannot read the defaults of clusterimg-gen"
}
if [[ -z ${CIMG_BUILDER:-} || -z ${CIMG_TOOLS:-} || -z ${CIMG_RETRIES:-} || -z ${CIMG_TLS_VERIFY:-} ]]; then
  load_defaults
fi

# "<hex> *<path>" sha256 lines for the NUL-separated paths on stdin. openssl uses the CPU's SHA instructions, which
# makes it several times faster than coreutils on large contexts and downloads; both print the same lines.
if command -v openssl >/dev/null; then
  sha256_lines() { xargs -0 -r openssl dgst -sha256 -r; }
else
  sha256_lines() { xargs -0 -r sha256sum --binary; }
fi

# listed_sum NAME < SUMS: the sha256 that sha256sum's format lists for NAME (`*NAME` in binary mode), in lowercase; the
# first such line counts, as lock.py reads the same file (install.sh uses it).
listed_sum() {
  local sum file extra
  while read -r sum file extra; do
    if [[ -z $extra && ${sum,,} =~ ^[0-9a-f]{64}$ && ($file == "$1" || $file == "*$1") ]]; then
      printf '%s\n' "${sum,,}"
      return 0
    fi
  done
  return 1
}

arch_ok() {
  case $1 in
  amd64 | arm64) ;;
  *) die "arch must be amd64 or arm64, got '$1'" ;;
  esac
}

# Every network call runs under NET: a registry that accepts the connection and never answers ends the attempt after
# CIMG_NET_TIMEOUT seconds, so retries bound the total time.
[[ ${CIMG_NET_TIMEOUT:-300} =~ ^[1-9][0-9]*$ ]] || die "CIMG_NET_TIMEOUT must be whole seconds, got '${CIMG_NET_TIMEOUT}'"
NET=(timeout --kill-after=10 "${CIMG_NET_TIMEOUT:-300}")

case $CIMG_TLS_VERIFY in
true) TLS=() ;;
false) TLS=(--tls-verify=false) ;;
*) die "tls-verify must be true or false, got '${CIMG_TLS_VERIFY}'" ;;
esac

# sealos needs root for its mounts; running every container tool as root keeps one image store and one auth file.
priv() {
  if ((EUID == 0)); then
    "$@"
  else
    local bin
    bin=$(command -v "$1") || die "$1 not found on PATH"
    command -v sudo >/dev/null || die "$1 needs root: run as root or install sudo"
    sudo --preserve-env=REGISTRY_AUTH_FILE "$bin" "${@:2}"
  fi
}

# The registry host of an image reference, as docker resolves it.
registry_of() {
  local first=${1%%/*}
  if [[ $1 == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
    printf '%s\n' "$first"
  else
    printf 'docker.io\n'
  fi
}

# The registry this leg pushes to, which it logs in to and to which tls-verify applies: the registry input, else the
# image's registry; empty when neither is known.
own_registry() {
  if [[ -n ${CIMG_REGISTRY:-} ]]; then
    printf '%s\n' "$CIMG_REGISTRY"
  elif [[ -n ${CIMG_IMAGE:-} ]]; then
    registry_of "$CIMG_IMAGE"
  fi
}

# The input digest that `skopeo inspect` output $1 shows in the image's io.clusterimage.inputs label; `none` without it.
inputs_label() {
  if [[ $1 =~ \"io\.clusterimage\.inputs\":[[:space:]]*\"([0-9a-f]*)\" ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"
  else
    printf 'none\n'
  fi
}

# The architecture of the local image $1. skopeo only reads, so it starts faster than buildah; either will do.
local_arch() {
  if command -v skopeo >/dev/null; then
    local config
    config=$(priv skopeo inspect --config "containers-storage:$1") || return 1
    [[ $config =~ \"architecture\":[[:space:]]*\"([^\"]*)\" ]] || return 1
    printf '%s\n' "${BASH_REMATCH[1]}"
  else
    priv buildah inspect --type image --format '{{.OCIv1.Architecture}}' "$1"
  fi
}

_login_once() {
  local login=(priv "${NET[@]}" buildah login)
  if [[ $2 == user ]]; then login=("${NET[@]}" skopeo login); fi
  printf '%s' "$CIMG_PASSWORD" |
    "${login[@]}" ${TLS[@]+"${TLS[@]}"} --username "$CIMG_USERNAME" --password-stdin "$1" >/dev/null
}

# A login that would store the credentials already stored changes nothing; skip its round trip.
_logged_in() {
  local file=$REGISTRY_AUTH_FILE auth
  [[ -r $file ]] || return 1
  auth=$(printf '%s:%s' "$CIMG_USERNAME" "$CIMG_PASSWORD" | base64 -w0)
  [[ $(<"$file") =~ "\"$1\":"[[:space:]]*"{"[^}]*"\"auth\":"[[:space:]]*"\"$auth\"" ]]
}

# github_api METHOD PATH [CURL_ARGS...]: the body of the answer of GitHub's API for PATH under this repository,
# GITHUB_REPOSITORY. The token CIMG_TOKEN reaches curl on stdin, never argv. A 4xx other than 429 will not change on a
# retry: it returns NO_RETRY, with the body on stdout.
github_api() {
  local reply status
  reply=$(printf 'header = "Authorization: Bearer %s"\n' "$CIMG_TOKEN" |
    "${NET[@]}" curl --config - --silent --show-error --max-time 30 -w '\n%{http_code}' -X "$1" \
      -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28" \
      "${@:3}" "${GITHUB_API_URL:-https://api.github.com}/repos/$GITHUB_REPOSITORY/$2") || return 1
  status=${reply##*$'\n'}
  reply=${reply%$'\n'*}
  case $status in
  2??) printf '%s\n' "$reply" ;;
  429) log "$1 $2 answered HTTP 429" && return 1 ;;
  4??) log "$1 $2 answered HTTP $status" && printf '%s\n' "$reply" && return "$NO_RETRY" ;;
  *) log "$1 $2 answered HTTP $status" && return 1 ;;
  esac
}

# registry_login HOST [user]: logs in to HOST for this step, as the builder runs (root, through priv), or with `user`
# as this user, for lookups that run as this user.
registry_login() {
  [[ -n ${CIMG_USERNAME:-} ]] || return 0
  [[ -n ${CIMG_PASSWORD:-} ]] || die "a username was given for $1 but no password"
  mask "$CIMG_PASSWORD" "the password for $1"
  step_auth_file
  if _logged_in "$1"; then
    log "already logged in to $1 as $CIMG_USERNAME"
    return 0
  fi
  retry _login_once "$1" "${2:-builder}" || die "login to $1 as $CIMG_USERNAME failed"
  log "logged in to $1 as $CIMG_USERNAME"
}
