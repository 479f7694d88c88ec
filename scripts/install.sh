#!/usr/bin/env bash
# Puts buildah (always) and sealos (builder=sealos) on PATH, verifying every download before it can run.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

host_arch() {
  case $(uname -m) in
  x86_64) echo amd64 ;;
  aarch64 | arm64) echo arm64 ;;
  *) uname -m ;;
  esac
}

arch=${CIMG_ARCH:-$(host_arch)}
arch_ok "$arch"
builder=${CIMG_BUILDER:-sealos}
tools=${CIMG_TOOLS:-download}
cache=${RUNNER_TOOL_CACHE:-$HOME/.cache}/clusterimage

case $builder in sealos | buildah) ;; *) die "builder must be sealos or buildah, got '$builder'" ;; esac

need=(buildah)
if [[ $builder == sealos ]]; then need+=(sealos); fi

if [[ $tools == system ]]; then
  for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH (tools=system)"
  done
  exit 0
fi
[[ $tools == download ]] || die "tools must be download or system, got '$tools'"

fill() {
  local s=${1//\{version\}/$2}
  printf '%s\n' "${s//\{arch\}/$arch}"
}

sha_of() {
  local sum
  read -r sum _ < <(printf '%s\0' "$1" | sha256_lines)
  printf '%s\n' "$sum"
}

fetch() {
  curl --fail --silent --show-error --location --connect-timeout 20 --max-time 300 \
    --output "$2" "$1"
}

# Downloads to a side file first so an interrupted transfer never looks like a cached tool.
download() {
  log "downloading $1"
  retry fetch "$1" "$2.part" || die "download failed: $1"
  mv "$2.part" "$2"
}

# True when $1 on PATH reports version $2 (any, when empty) via "$1 ${@:3}". Our cache is not trusted until verified.
on_path() {
  local bin found
  bin=$(command -v "$1") || return 1
  [[ $bin != "$cache"/* ]] || return 1
  if [[ -z $2 ]]; then
    log "using $1 from $bin"
    return 0
  fi
  found=$("$bin" "${@:3}" 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+[^ "]*' | head -n1 || true)
  if [[ $found == "$2" ]]; then
    log "using $1 $2 from $bin"
    return 0
  fi
  return 1
}

add_path() {
  export PATH="$1:$PATH"
  if [[ -n ${GITHUB_PATH:-} ]]; then printf '%s\n' "$1" >>"$GITHUB_PATH"; fi
}

mismatch() {
  rm -f "$1"
  die "sha256 mismatch for $2: got $3, expected $4; refusing to use it"
}

install_buildah() {
  local ver=${CIMG_BUILDAH_VERSION:-} want=${CIMG_BUILDAH_SHA256:-} dir bin got
  ver=${ver#v}
  if on_path buildah "$ver" --version; then return; fi
  [[ -n $ver ]] || die "buildah is not on PATH: set buildah-version to download it, or use tools=system"
  [[ -n ${CIMG_BUILDAH_URL:-} ]] || die "buildah-url is required to download buildah"
  dir=$cache/buildah/$ver/$arch
  bin=$dir/buildah
  mkdir -p "$dir"
  if [[ ! -f $bin ]]; then download "$(fill "$CIMG_BUILDAH_URL" "$ver")" "$bin"; fi
  got=$(sha_of "$bin")
  if [[ -n $want ]]; then
    [[ ${got,,} == "${want,,}" ]] || mismatch "$bin" "buildah $ver ($arch)" "$got" "$want"
  else
    # Unpinned: trust on first use, then hold the cache to what was first recorded.
    if [[ -f $bin.sha256 && $(<"$bin.sha256") != "$got" ]]; then
      mismatch "$bin" "cached buildah $ver ($arch)" "$got" "$(<"$bin.sha256")"
    fi
    printf '%s\n' "$got" >"$bin.sha256"
    warn "buildah $ver ($arch) is not pinned; its sha256 is $got. Set buildah-sha256-$arch to pin it."
    summary "> [!WARNING]" \
      "> buildah $ver ($arch) is not pinned; its sha256 is \`$got\`. Set \`buildah-sha256-$arch\` to pin it."
  fi
  chmod +x "$bin"
  add_path "$dir"
  log "buildah $ver ($arch) verified: $got"
}

install_sealos() {
  local ver=${CIMG_SEALOS_VERSION:-} want=${CIMG_SEALOS_SHA256:-} url dir tarball name sums got tmp
  ver=${ver#v}
  if on_path sealos "$ver" version --short; then return; fi
  [[ -n $ver ]] || die "sealos is not on PATH: set sealos-version to download it, or use tools=system"
  [[ -n ${CIMG_SEALOS_URL:-} ]] || die "sealos-url is required to download sealos"
  url=$(fill "$CIMG_SEALOS_URL" "$ver")
  name=${url##*/}
  name=${name%%\?*}
  dir=$cache/sealos/$ver/$arch
  tarball=$dir/$name
  mkdir -p "$dir"
  if [[ -z $want ]]; then
    local sums_url
    [[ -n ${CIMG_SEALOS_CHECKSUMS_URL:-} ]] ||
      die "sealos-checksums-url is required when sealos-sha256-$arch is not set"
    sums_url=$(fill "$CIMG_SEALOS_CHECKSUMS_URL" "$ver")
    sums=$dir/checksums.txt
    download "$sums_url" "$sums"
    want=$(awk -v f="$name" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")
    [[ -n $want ]] || die "$name is not listed in $sums_url"
  fi
  if [[ ! -f $tarball ]]; then download "$url" "$tarball"; fi
  got=$(sha_of "$tarball")
  [[ ${got,,} == "${want,,}" ]] || mismatch "$tarball" "$name" "$got" "$want"
  # The binary is re-extracted from the just-verified tarball every time, so a tampered cached binary never runs.
  tmp=$(mktemp -d "$dir/.x.XXXXXX")
  tar -xzf "$tarball" -C "$tmp" --no-same-owner sealos || {
    rm -rf "$tmp"
    die "$name has no top-level sealos binary"
  }
  chmod +x "$tmp/sealos"
  mv -f "$tmp/sealos" "$dir/sealos"
  rm -rf "$tmp"
  add_path "$dir"
  log "sealos $ver ($arch) verified: $got"
}

group_start "install ${need[*]} ($arch)"
install_buildah
if [[ $builder == sealos ]]; then install_sealos; fi
group_end
