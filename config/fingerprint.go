package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Fingerprint returns a digest of every setting of the target, its loaded APIKey included,
// so that a reload can keep running (with their warmup state) exactly the targets whose
// fingerprint did not change. The key enters only through the hash; still, treat the
// fingerprint as internal: compare it, do not log or serve it.
//
// It returns "" only for a target whose extra_body cannot be encoded as JSON, which
// validation rejects.
func (t Target) Fingerprint() string {
	h := sha256.New()
	// JSON is a canonical enough encoding: struct fields in declaration order, map keys
	// sorted, pointers followed. Secret marshals as a placeholder, so the key goes in below.
	if err := json.NewEncoder(h).Encode(t); err != nil {
		return ""
	}
	h.Write([]byte{0})
	h.Write([]byte(t.APIKey.Value()))
	return hex.EncodeToString(h.Sum(nil))
}
