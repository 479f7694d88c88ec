#!/usr/bin/env bash
# Plan job: install clusterimg-gen from this action's own checkout, then map the event to `plan` flags.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# skopeo as this user: the plan's lookups run as this user, unlike the builds.
skopeo_login() {
  printf '%s' "$CIMG_PASSWORD" |
    "${NET[@]}" skopeo login ${TLS[@]+"${TLS[@]}"} --username "$CIMG_USERNAME" --password-stdin "$CIMG_REGISTRY" >/dev/null
}

args=(plan --repo "${CIMG_REPO:-.}")
locks=()
case "${CIMG_EVENT:-}" in
  push)
    # A new branch has no `before`: build everything.
    if [[ -n "${CIMG_BEFORE:-}" && "${CIMG_BEFORE//0/}" != "" ]]; then
      args+=(--changed-from "$CIMG_BEFORE" --changed-to HEAD)
      # A push run cancelled while pending never built its changes: diff from the last run that succeeded.
      if [[ -n ${CIMG_WORKFLOW:-} && -n ${CIMG_TOKEN:-} ]]; then
        args+=(--since-last-success "$CIMG_WORKFLOW")
        locks=(github) # only this lookup talks to GitHub, so only it installs the API client
        mask "$CIMG_TOKEN"
        export GITHUB_TOKEN=$CIMG_TOKEN
      fi
    fi
    ;;
  pull_request)
    if [[ -n "${CIMG_BASE:-}" ]]; then
      args+=(--changed-from "$CIMG_BASE" --changed-to HEAD)
    fi
    ;;
  workflow_dispatch | issue_comment)
    # A comment names one app-version, which the request job checked; it never means "everything".
    if [[ $CIMG_EVENT == issue_comment && (-z ${CIMG_APP:-} || -z ${CIMG_VERSION:-}) ]]; then
      die "a comment build needs app and version"
    fi
    unchanged=true
    if [[ -n "${CIMG_APP:-}" ]]; then
      args+=(--app "$CIMG_APP")
      if [[ -n "${CIMG_VERSION:-}" ]]; then
        args+=(--version "$CIMG_VERSION")
      fi
    fi
    ;;
  schedule)
    # act and manual replays carry no cron: then every scheduled app builds.
    args+=(--schedule "${CIMG_SCHEDULE:-*}")
    unchanged=true
    # Tags published before this tool, without its label, count as current until their inputs change.
    adopt=true
    ;;
  *) ;;
esac

# Scheduled and dispatched runs skip images whose inputs did not change, unless forced.
if [[ ${unchanged:-false} == true && ${CIMG_FORCE:-false} != true ]]; then
  args+=(--skip-unchanged)
  if [[ ${adopt:-false} == true ]]; then args+=(--adopt); fi
  if [[ -n ${CIMG_USERNAME:-} ]]; then
    [[ -n ${CIMG_REGISTRY:-} ]] || die "registry is required with username"
    mask "$CIMG_PASSWORD" "the password for $CIMG_REGISTRY"
    step_auth_file
    retry skopeo_login || die "login to $CIMG_REGISTRY as $CIMG_USERNAME failed"
  fi
fi

clusterimg_gen_venv "$CIMG_ACTION_PATH/.." ${locks[@]+"${locks[@]}"}

# One run gives both the matrices and the summary: with --skip-unchanged, each run asks the registry.
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then args+=(--summary "$GITHUB_STEP_SUMMARY"); fi
"$CIMG_GEN" "${args[@]}" --format github \
  --build-shards "${CIMG_BUILD_SHARDS:-1}" --manifest-shards "${CIMG_MANIFEST_SHARDS:-1}" --stages "${CIMG_STAGES:-1}" \
  --groups "${CIMG_GROUPS:-1}" --group "${CIMG_GROUP:-1}" \
  >> "${GITHUB_OUTPUT:-/dev/stdout}"
