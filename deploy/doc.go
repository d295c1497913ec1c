// Package deploy holds no code: it is the home of inferprobe's deployment files (the Kubernetes
// manifests under kubernetes/; the Helm chart is in charts/inferprobe) and of the tests that
// keep them, the chart, the Dockerfile and the .dockerignore in step with the real command
// line, configuration loader and build, and valid for the real tools (helm, kustomize,
// kubectl-validate with the Kubernetes schemas and the Prometheus Operator's CRDs, pinned in
// tools/versions and installed by tools/install.sh). generate/ writes the copies of alerts/
// and dashboards/ that the chart and the kustomizations ship. See docs/deploy.md.
package deploy
