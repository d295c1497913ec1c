//go:build race

package engine

// raceDetector reports that the tests run under the race detector, which slows code five to
// ten times: timing bounds are then not what the code achieves (the Makefile's unit target
// runs the timing test once more without it).
const raceDetector = true
