// Package kservepb holds the Go stubs of the KServe v2 (Open Inference Protocol) gRPC service
// as Triton Inference Server ships it, with the ModelStreamInfer extension for decoupled
// (streaming) models. grpc_service.proto is an extract of Triton's public proto (see NOTICE
// for its origin and licence); the generated files are committed so that building needs no
// protoc. Regenerate with protoc, protoc-gen-go and protoc-gen-go-grpc on PATH:
//
//	go generate ./internal/kservepb
//
// The proto file is registered as internal/kservepb/grpc_service.proto (not a bare
// grpc_service.proto) so that it cannot clash with another copy of Triton's proto linked into
// the same binary under its upstream path.
package kservepb

//go:generate protoc -I ../.. --go_out=../.. --go_opt=module=github.com/inferprobe/inferprobe --go-grpc_out=../.. --go-grpc_opt=module=github.com/inferprobe/inferprobe internal/kservepb/grpc_service.proto
