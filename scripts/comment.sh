#!/usr/bin/env bash
# A `/build <app> <version>` comment. request: acknowledge it, check that its author may write to the repository, and
# parse it; only a valid request by a writer sets the outputs app and version. reply: answer it with what the run
# published, or why it did not. The comment's text is matched against fixed patterns here and never evaluated.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export LC_ALL=C # [a-z] means a to z, whatever the runner's locale

APP='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*' # an OCI path component, as model.COMPONENT
VERSION='[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}' # an OCI tag, as model.TAG
REQUEST="^/(build|imagebuild_apps)[[:blank:]]+($APP)[[:blank:]]+($VERSION)\$"
USAGE="\`/build <app> <version>\` (or \`/imagebuild_apps <app> <version>\`) alone in the comment, e.g. \`/build calico v3.26.1\`"

[[ ${GITHUB_REPOSITORY:-} =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "GITHUB_REPOSITORY is not OWNER/NAME"
[[ -n ${CIMG_TOKEN:-} ]] || die "token is required"
mask "$CIMG_TOKEN" "the token"
[[ ${CIMG_ISSUE:-} =~ ^[1-9][0-9]{0,18}$ ]] || die "issue must be the number of an issue or pull request"

# The JSON string of $1, from an encoder: the text may hold any character.
json_string() { TEXT=$1 python3 -c 'import json, os; print(json.dumps(os.environ["TEXT"]))'; }

answer() {
  retry github_api POST "issues/$CIMG_ISSUE/comments" --data-binary "{\"body\": $(json_string "$1")}" >/dev/null ||
    die "could not answer on #$CIMG_ISSUE"
  log "answered on #$CIMG_ISSUE"
}

run_url() { printf '%s/%s/actions/runs/%s' "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY" "${GITHUB_RUN_ID:-0}"; }

request() {
  [[ ${CIMG_COMMENT_ID:-} =~ ^[1-9][0-9]{0,18}$ ]] || die "comment-id must be the number of a comment"
  local body=${CIMG_BODY:-} user=${CIMG_COMMENTER:-} reply permission
  body=${body//$'\r'/}
  # Trailing blanks and line breaks are an editor's, not the request's.
  while [[ $body == *[[:space:]] ]]; do body=${body%[[:space:]]}; done
  case ${body%%[[:space:]]*} in
  /build | /imagebuild_apps) ;;
  *)
    log "not a build request; nothing to do"
    return 0
    ;;
  esac
  retry github_api POST "issues/comments/$CIMG_COMMENT_ID/reactions" --data-binary '{"content": "eyes"}' >/dev/null ||
    warn "could not react to comment $CIMG_COMMENT_ID"

  # The API, not author_association: that says how someone is associated, not what they may do here. A login
  # GitHub does not know, or any other refusal of the question, counts as no permission.
  permission=none
  if [[ $user =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,38}$ ]]; then
    if reply=$(retry github_api GET "collaborators/$user/permission"); then
      permission=$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("permission") or "none")' <<<"$reply") ||
        die "the permission of $user is not readable JSON"
    else
      (($? == NO_RETRY)) || die "could not read the permission of $user"
    fi
  fi
  case $permission in
  admin | maintain | write) ;;
  *)
    log "refused: the commenter's permission is $permission; a build needs write, maintain or admin"
    answer "Thank you for the request. Only people with write access to this repository can start a build from a \
comment, so nothing was built; a maintainer can start it for you."
    return 0
    ;;
  esac

  if [[ $body != *$'\n'* && $body =~ $REQUEST ]]; then
    local app=${BASH_REMATCH[2]} version=${BASH_REMATCH[5]}
    log "request by $user: $app $version"
    set_output app "$app"
    set_output version "$version"
    summary "Build requested in #$CIMG_ISSUE by @$user: \`$app\` \`$version\`"
  else
    log "refused: not a valid request"
    answer "This is not a valid request, so nothing was built. Write $USAGE."
  fi
}

# A Markdown table of the image@digest words given.
table() {
  local word
  printf '| list | digest |\n| --- | --- |\n'
  for word in "$@"; do printf "| \`%s\` | \`%s\` |\n" "${word%@*}" "${word#*@}"; done
}

reply() {
  local app=${CIMG_APP:-} version=${CIMG_VERSION:-} from="" words=() published=() word text
  [[ $app =~ ^$APP$ && $version =~ ^$VERSION$ ]] || die "app and version must be an app name and a tag"
  read -r -d '' -a words <<<"${CIMG_PUBLISHED:-}" || true
  for word in "${words[@]}"; do
    # A job that published nothing gives an empty output or a bare @.
    if [[ $word =~ ^[a-z0-9][a-z0-9._:/-]*:$VERSION@sha256:[0-9a-f]{64}$ ]]; then published+=("$word"); fi
  done
  if [[ ${GITHUB_REF_NAME:-} =~ ^[A-Za-z0-9._/-]+$ && ${GITHUB_SHA:-} =~ ^[0-9a-f]{40}$ ]]; then
    from=" from \`$GITHUB_REF_NAME\` at ${GITHUB_SHA:0:7}"
  fi
  if [[ ${CIMG_PLANNED:-} != success ]]; then
    text="\`$app\` \`$version\` could not be planned, so nothing was built: is it an app and version of this tree? \
The plan job says why: $(run_url)"
  elif [[ ${CIMG_FAILED:-false} == true ]]; then
    text="Building or publishing \`$app\` \`$version\`$from failed: $(run_url)"
    if ((${#published[@]})); then text+=$'\n\n'"Published all the same:"$'\n\n'$(table "${published[@]}"); fi
  elif ((${#published[@]} == 0)); then
    text="Nothing to build: the published images of \`$app\` \`$version\` are current (their inputs did not change)."
  else
    text="Built \`$app\` \`$version\`$from and published:"$'\n\n'$(table "${published[@]}")$'\n\n'"Run: $(run_url)"
  fi
  answer "$text"
}

case ${CIMG_PHASE:-} in
request) request ;;
reply) reply ;;
*) die "phase must be request or reply, got '${CIMG_PHASE:-}'" ;;
esac
