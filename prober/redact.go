package prober

import (
	"cmp"
	"net/url"
	"slices"
	"strings"

	"github.com/inferprobe/inferprobe/config"
)

// Redacted is what stands for a credential in error text.
const Redacted = "<secret>"

// minHeaderSecret is the shortest configured header value treated as a credential: shorter
// values (a team name, a version, "1") are not tokens, and replacing them would garble the
// rest of a message.
const minHeaderSecret = 8

// TargetSecrets lists the credentials of t that error text must never carry: the API key, the
// URL's password, and every configured header value of at least 8 bytes (an Authorization or
// X-Api-Key value, whatever the name). A server's error body often echoes what it was sent.
func TargetSecrets(t config.Target) []string {
	var s []string
	if k := t.APIKey.Value(); k != "" {
		s = append(s, k)
	}
	if u, err := url.Parse(t.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = append(s, p)
		}
	}
	for _, v := range t.Headers {
		if len(v) >= minHeaderSecret {
			s = append(s, v)
		}
	}
	return s
}

// redactor removes known credentials from error text.
type redactor struct{ secrets []string }

func newRedactor(secrets []string) redactor {
	s := slices.DeleteFunc(slices.Clone(secrets), func(v string) bool { return v == "" })
	// Longest first: a secret that contains another is replaced whole.
	slices.SortFunc(s, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return redactor{secrets: slices.Compact(s)}
}

// error returns err, or when its text holds a credential an error whose text has each
// replaced by Redacted. The redacted error wraps nothing: unwrapping must not reach the text.
func (r redactor) error(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	msg := err.Error()
	out := msg
	for _, s := range r.secrets {
		out = strings.ReplaceAll(out, s, Redacted)
	}
	if out == msg {
		return err
	}
	return redactedError(out)
}

type redactedError string

func (e redactedError) Error() string { return string(e) }
