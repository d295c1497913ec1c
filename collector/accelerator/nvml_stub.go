//go:build !(linux && cgo)

package accelerator

// NewLibrary returns a Library whose Init always fails with ErrNotAvailable: this build has no
// NVML (go-nvml needs linux and cgo), so the collector reports itself down and the daemon runs on.
func NewLibrary() Library {
	return stubLibrary{}
}

// stubLibrary is the Library of builds without NVML. Only Init is ever called on it (the
// collector calls nothing after a failed Init); the rest answer the same error for safety.
type stubLibrary struct{}

func (stubLibrary) Init() error                       { return ErrNotAvailable }
func (stubLibrary) Shutdown() error                   { return ErrNotAvailable }
func (stubLibrary) DeviceCount() (int, error)         { return 0, ErrNotAvailable }
func (stubLibrary) DeviceByIndex(int) (Device, error) { return nil, ErrNotAvailable }
func (stubLibrary) DriverVersion() (string, error)    { return "", ErrNotAvailable }
func (stubLibrary) CUDADriverVersion() (int, error)   { return 0, ErrNotAvailable }
func (stubLibrary) GPMSampleAlloc() (GPMSample, error) {
	return nil, ErrNotAvailable
}
func (stubLibrary) GPMSampleFree(GPMSample) error { return ErrNotAvailable }
func (stubLibrary) GPMMetric(GPMSample, GPMSample, GPMMetricID) (float64, error) {
	return 0, ErrNotAvailable
}
