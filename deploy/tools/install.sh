#!/usr/bin/env bash
# Builds and fetches the tools named in deploy/tools/versions into one directory, each under a
# name that carries its version, so that a bumped version is rebuilt and a current one is not:
#
#   deploy/tools/install.sh [DIR]      # DIR: $INFERPROBE_TOOLS, else $(go env GOPATH)/inferprobe-tools
#
# Everything comes from the Go module proxy, each module checked against the Go checksum database
# as any download is, so this needs no network beyond what `go build` needs. The deploy tests
# look in the same place. A warm run (everything present) takes milliseconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions"
dir=${1:-${INFERPROBE_TOOLS:-$(go env GOPATH)/inferprobe-tools}}
mkdir -p "$dir"

# build NAME MODULE PACKAGE VERSION [TAGS [LDFLAGS]]: a throwaway module that requires
# MODULE@VERSION builds PACKAGE (with build tags TAGS and linker flags LDFLAGS besides -s -w), so
# the tool's own go.mod decides its dependencies (as `go install` would).
build() {
  local name=$1 module=$2 package=$3 version=$4 tags=${5:-} ldflags=${6:-}
  local out="$dir/$name-$version/$name"
  if [ -x "$out" ]; then return; fi
  local tmp
  tmp=$(mktemp -d)
  (
    cd "$tmp"
    go mod init inferprobe-tools >/dev/null 2>&1
    go mod edit -require="$module@$version"
    GOFLAGS=-mod=mod go get "$package@$version" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "$package@$version"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags="$tags" -ldflags="-s -w $ldflags" -o "$out.tmp" "$package"
  )
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
  echo "built $out"
}

# module_dir MODULE VERSION: downloads a module (source only, not built) and prints its directory.
# It runs outside any module, so that no go.mod or go.sum is touched.
module_dir() {
  local d
  d=$(mktemp -d)
  (cd "$d" && go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rmdir "$d"
}

build helm "$HELM_MODULE" "$HELM_PACKAGE" "$HELM_VERSION"
build kustomize "$KUSTOMIZE_MODULE" "$KUSTOMIZE_PACKAGE" "$KUSTOMIZE_VERSION"
build kubectl-validate "$KUBECTL_VALIDATE_MODULE" "$KUBECTL_VALIDATE_PACKAGE" "$KUBECTL_VALIDATE_VERSION"
# Prometheus 3 for slo_live_test.go, which also runs Debian's Prometheus 2.
build prometheus "$PROMETHEUS_MODULE" "$PROMETHEUS_PACKAGE" "$PROMETHEUS_VERSION" "$PROMETHEUS_TAGS" \
  "-X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"

# kubectl-validate reads local schemas laid out as api/<version>.json and
# apis/<group>/<version>.json; the Kubernetes repository names them api__v1_openapi.json and
# apis__apps__v1_openapi.json.
schemas="$dir/kubernetes-openapi-$KUBERNETES_VERSION"
if [ ! -d "$schemas" ]; then
  src=$(module_dir "$KUBERNETES_MODULE" "$KUBERNETES_VERSION")/api/openapi-spec/v3
  tmp="$schemas.tmp"
  rm -rf "$tmp"
  for f in "$src"/api__*_openapi.json "$src"/apis__*_openapi.json; do
    base=$(basename "$f" _openapi.json)
    IFS=_ read -r -a parts <<<"${base//__/_}"
    # api__v1 is the core group; apis__<group>__<version> the others. apis__<group> (a group's
    # discovery document, no version) is not a schema.
    case "${parts[0]}:${#parts[@]}" in
      api:2) mkdir -p "$tmp/api" && cp "$f" "$tmp/api/${parts[1]}.json" ;;
      apis:3) mkdir -p "$tmp/apis/${parts[1]}" && cp "$f" "$tmp/apis/${parts[1]}/${parts[2]}.json" ;;
    esac
  done
  mv "$tmp" "$schemas"
  echo "laid out $schemas"
fi

crds="$dir/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
if [ ! -d "$crds" ]; then
  src=$(module_dir "$PROMETHEUS_OPERATOR_MODULE" "$PROMETHEUS_OPERATOR_VERSION")/example/prometheus-operator-crd
  rm -rf "$crds.tmp"
  mkdir -p "$crds.tmp"
  cp "$src"/*.yaml "$crds.tmp/"
  mv "$crds.tmp" "$crds"
  echo "copied $crds"
fi

# The OpenTelemetry Collector for collector/otlp's end-to-end test: the builder, then the
# distribution of deploy/tools/otelcol/manifest.yaml, rebuilt when the manifest changes.
otelcol_sum=$(sha256sum "$here/otelcol/manifest.yaml" | cut -c1-12)
otelcol="$dir/otelcol-$OTELCOL_VERSION-$otelcol_sum/otelcol-inferprobe"
if [ ! -x "$otelcol" ]; then
  build otelcol-builder "$OTELCOL_BUILDER_MODULE" "$OTELCOL_BUILDER_MODULE" "$OTELCOL_VERSION"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 "$dir/otelcol-builder-$OTELCOL_VERSION/otelcol-builder" --config "$here/otelcol/manifest.yaml" \
    --output-path "$tmp" --ldflags="-s -w" >"$tmp.log" 2>&1 || { cat "$tmp.log" >&2; exit 1; }
  mkdir -p "$(dirname "$otelcol")"
  mv "$tmp/otelcol-inferprobe" "$otelcol"
  rm -rf "$tmp" "$tmp.log"
  echo "built $otelcol"
fi
