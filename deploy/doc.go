// Package deploy holds no code: it is the home of inferprobe's deployment files (the Kubernetes
// manifests under kubernetes/) and of the test that keeps them, the Dockerfile and the
// .dockerignore in step with the real command line, configuration loader and build. See
// docs/deploy.md.
package deploy
