#!/usr/bin/env bash
# Plan job: install clusterimg-gen from this action's own checkout, then map the event to `plan` flags.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The head commit of the newest successful push run of workflow $1 on this branch; nothing when it has none.
last_success() {
  local runs
  runs=$(retry github_api GET "actions/workflows/$1/runs" --get --data-urlencode "branch=$GITHUB_REF_NAME" \
    --data event=push --data status=success --data per_page=1) || return 1
  python3 -c 'import json, re, sys
try:
    runs = json.load(sys.stdin)["workflow_runs"]
    sha = runs[0]["head_sha"] if runs else ""
except (ValueError, LookupError, TypeError):
    sys.exit("the answer is not a list of workflow runs")
if not isinstance(sha, str) or not re.fullmatch("([0-9a-f]{40})?", sha):
    sys.exit(f"GitHub returned {sha!r}, not a 40-hex commit SHA")
print(sha)' <<<"$runs"
}

# A push run cancelled while pending never built its changes. So the base of a push, $base, is the head of workflow
# $1's last successful push run on this branch when that is an ancestor of HEAD, else the push's own `before`.
push_base() {
  local sha
  base=$CIMG_BEFORE
  if [[ ! ${GITHUB_REPOSITORY:-} =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ || -z ${GITHUB_REF_NAME:-} ]]; then
    warn "the last successful run needs GITHUB_REPOSITORY and GITHUB_REF_NAME; diffing from $base"
  elif [[ ! $1 =~ ^[A-Za-z0-9_-][A-Za-z0-9_.-]*$ ]]; then
    warn "workflow '$1' is not a workflow file name; diffing from $base"
  elif ! sha=$(last_success "$1"); then
    warn "could not look up the last successful run of $1 on $GITHUB_REF_NAME; diffing from $base"
  elif [[ -n $sha && $sha != "$base" ]] && git -C "${CIMG_REPO:-.}" merge-base --is-ancestor "$sha" HEAD 2>/dev/null
  then
    log "diffing from $sha, the last successful run of $1 on $GITHUB_REF_NAME, not $base"
    base=$sha
  fi
}

args=(plan --repo "${CIMG_REPO:-.}")
case "${CIMG_EVENT:-}" in
  push)
    # A new branch has no `before`: build everything.
    if [[ -n "${CIMG_BEFORE:-}" && "${CIMG_BEFORE//0/}" != "" ]]; then
      base=$CIMG_BEFORE
      if [[ -n ${CIMG_WORKFLOW:-} && -n ${CIMG_TOKEN:-} ]]; then
        mask "$CIMG_TOKEN" "the token"
        push_base "$CIMG_WORKFLOW"
      fi
      args+=(--changed-from "$base" --changed-to HEAD)
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
    registry_login "$CIMG_REGISTRY" user # the plan's lookups run as this user, unlike the builds
  fi
fi

clusterimg_gen_venv "$CIMG_ACTION_PATH/.."

# One run gives both the matrices and the summary: with --skip-unchanged, each run asks the registry.
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then args+=(--summary "$GITHUB_STEP_SUMMARY"); fi
"$CIMG_GEN" "${args[@]}" --format github \
  --build-shards "${CIMG_BUILD_SHARDS:-1}" --manifest-shards "${CIMG_MANIFEST_SHARDS:-1}" --stages "${CIMG_STAGES:-1}" \
  --groups "${CIMG_GROUPS:-1}" --group "${CIMG_GROUP:-1}" \
  >> "${GITHUB_OUTPUT:-/dev/stdout}"
