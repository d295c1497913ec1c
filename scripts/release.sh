#!/usr/bin/env bash
# Sets the release version everywhere it is written down (`make release VERSION=x.y.z`):
# the chart's version and appVersion, the inferprobe image tag of every kustomization under
# deploy/kubernetes, and the example image references (registry.example.com/platform/inferprobe:
# TAG) in deploy/kubernetes, the chart's examples and docs/deploy.md. deploy/chart_test.go's
# TestChartVersion holds them equal, and to the git tag vX.Y.Z once HEAD carries one; this
# script only edits files, so that the release commit and its tag stay a person's step.
#
#   scripts/release.sh VERSION [ROOT]    # ROOT: the repository root, default this checkout
set -euo pipefail
version=${1:-}
root=${2:-$(cd "$(dirname "$0")/.." && pwd)}
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION=\"$version\" is not a semantic version such as 1.2.3 or 1.2.3-rc.1 (no leading v)" >&2
  exit 2
fi
chart=$root/charts/inferprobe/Chart.yaml
[ -f "$chart" ] || { echo "release: $chart is missing" >&2; exit 1; }
old=$(sed -nE 's/^appVersion:[[:space:]]*"?([^"[:space:]]+)"?.*$/\1/p' "$chart")
[ -n "$old" ] || { echo "release: $chart has no appVersion line" >&2; exit 1; }

sed -i -E "s/^version:.*$/version: $version/; s/^appVersion:.*$/appVersion: \"$version\"/" "$chart"

# In each kustomization, the newTag of the images entry named inferprobe (whatever it was).
mapfile -t kustomizations < <(find "$root/deploy/kubernetes" -name 'kustomization.y*ml' | sort)
tags=0
for f in "${kustomizations[@]}"; do
  awk -v v="$version" '
    /^[[:space:]]*-[[:space:]]*name:/ { entry = ($NF == "inferprobe" || $NF == "\"inferprobe\"") }
    /^[^[:space:]#-]/ { entry = 0 }
    entry && /^[[:space:]]+newTag:/ { sub(/newTag:.*/, "newTag: \"" v "\""); n++ }
    { print }
    END { print n + 0 > "/dev/stderr" }' "$f" > "$f.release" 2> "$f.count"
  tags=$((tags + $(cat "$f.count")))
  mv "$f.release" "$f"
  rm -f "$f.count"
done
[ "$tags" -gt 0 ] || { echo "release: no kustomization under deploy/kubernetes sets the inferprobe image" >&2; exit 1; }

# The example references that name the old version in full.
refs=0
while IFS= read -r f; do
  sed -i "s#registry\.example\.com/platform/inferprobe:${old//./\\.}\\b#registry.example.com/platform/inferprobe:$version#g" "$f"
  refs=$((refs + 1))
done < <(grep -rlE "registry\.example\.com/platform/inferprobe:${old//./\\.}\b" \
  "$root/deploy/kubernetes" "$root/charts/inferprobe/examples" "$root/docs/deploy.md" 2>/dev/null | sort)

echo "release: $old -> $version: Chart.yaml, $tags kustomization image tags, example references in $refs files"
echo "then: git commit -am 'Release $version' && git tag -a v$version -m 'inferprobe $version'"
