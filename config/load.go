package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxKeyFileSize bounds what LoadSecrets reads from an api_key_file: keys are short, and a
// large file is a wrong path (a log, a binary), not a key.
const maxKeyFileSize = 64 << 10

// Load reads the configuration file at path, parses it strictly, applies defaults, validates
// it and loads the API keys it names (environment variables through os.Getenv). Relative
// api_key_file and tls file paths are taken relative to the directory of path, and are
// absolute in the returned Config.
//
// A problem with the content comes back as Errors (every problem, each naming its field path
// and line; the file name is not repeated in them); a file that cannot be read comes back
// as a wrapped os error.
//
// ext supply the registered kinds (see Extension); without them, names such as the API
// flavour and the pacer are neither defaulted nor checked. The engine package's Load passes
// every registry's extension.
func Load(path string, ext ...Extension) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, m, errs := parse(data, dir, ext)
	if errs != nil {
		return nil, errs
	}
	if errs := loadSecrets(c, os.Getenv, m); errs != nil {
		return nil, errs
	}
	return c, nil
}

// Parse parses a configuration held in memory, strictly (unknown keys, duplicate keys and
// values of the wrong type are errors), applies defaults and validates it. It returns Errors
// listing every problem. Relative file paths stay relative to the working directory, and API
// keys are not loaded: call LoadSecrets for that. ext are as for Load.
func Parse(data []byte, ext ...Extension) (*Config, error) {
	c, _, errs := parse(data, "", ext)
	if errs != nil {
		return nil, errs
	}
	return c, nil
}

// parse is Parse with relative paths resolved against dir (when not empty). It also returns
// what it learnt about the source, so that later errors (secrets) can name lines too.
func parse(data []byte, dir string, ext []Extension) (*Config, *meta, Errors) {
	c := &Config{}
	m := newMeta()
	errs, usable := decodeDocument(data, c, m)
	if !usable {
		return nil, nil, errs
	}
	if dir != "" {
		resolvePaths(c, dir)
	}
	applyDefaults(c, m.set)
	applyExtensionDefaults(c, m.set, ext)
	errs = append(errs, validate(c, m, ext)...)
	if len(errs) > 0 {
		return nil, nil, errs.sorted()
	}
	return c, m, nil
}

// resolvePaths makes the file paths of every target absolute, relative to dir, so that they
// mean the same whatever the daemon's working directory.
func resolvePaths(c *Config, dir string) {
	resolveOTelPaths(c.OTel, dir)
	if e := c.Experiment; e != nil && e.Subsystems != nil {
		for i, f := range e.Subsystems.Files {
			if f != "" && !filepath.IsAbs(f) {
				e.Subsystems.Files[i] = filepath.Join(dir, f)
			}
		}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		for _, p := range []*string{&t.APIKeyFile, &t.TLS.CAFile, &t.TLS.CertFile, &t.TLS.KeyFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		if tr := t.Traffic.Trace; tr != nil && tr.File != "" && !filepath.IsAbs(tr.File) {
			tr.File = filepath.Join(dir, tr.File)
		}
		if tk := &t.Request.Tokenizer; *tk != "" && !filepath.IsAbs(*tk) {
			*tk = filepath.Join(dir, *tk)
		}
		if ds := t.Request.Dataset; ds != nil && ds.File != "" && !filepath.IsAbs(ds.File) {
			ds.File = filepath.Join(dir, ds.File)
		}
	}
}

// LoadSecrets sets each target's APIKey from its api_key_file (the file's content, trimmed of
// surrounding white space) or its api_key_env (the variable's value, likewise trimmed, read
// through getenv; nil means os.Getenv), and clears it for a target that names neither. A
// relative api_key_file is relative to the working directory (Load has already made it
// absolute). A file that cannot be read or is empty, and a variable that is unset or empty,
// are errors naming the field; they never contain the key. Every target is tried and every
// problem returned as Errors.
func (c *Config) LoadSecrets(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	return loadSecrets(c, getenv, nil).err()
}

func loadSecrets(c *Config, getenv func(string) string, m *meta) Errors {
	v := &validator{m: m}
	targets := v.at(v.locate(loc{}, ""), "targets")
	for i := range c.Targets {
		t := &c.Targets[i]
		tl := v.item(targets, i)
		t.APIKey = v.secret(tl, "api_key", t.APIKeyFile, t.APIKeyEnv, getenv, "; it must hold only the key")
	}
	loadOTelSecrets(c.OTel, getenv, v)
	return v.errs
}

// secret reads the secret that the fields <field>_file (file) or <field>_env (env) at l
// name, "" when neither is set. A file that cannot be read or is empty, and a variable that
// is unset, empty or holds a control character (hint says what it should hold), are errors
// naming the field; they never contain the value.
func (v *validator) secret(l loc, field, file, env string, getenv func(string) string, hint string) Secret {
	switch {
	case file != "":
		val, problem := readKeyFile(file)
		if problem != "" {
			v.errorf(v.at(l, field+"_file"), "%s", problem)
			return ""
		}
		return Secret(val)
	case env != "":
		val := strings.TrimSpace(getenv(env))
		switch {
		case val == "":
			v.errorf(v.at(l, field+"_env"), "environment variable %s is unset or empty", env)
		case hasControl(val):
			v.errorf(v.at(l, field+"_env"), "environment variable %s holds a line break or control character%s", env, hint)
		default:
			return Secret(val)
		}
	}
	return ""
}

// readKeyFile returns the trimmed key in path, or why it cannot. The reason never quotes the
// content.
func readKeyFile(path string) (key, problem string) {
	f, err := os.Open(path)
	if err != nil {
		return "", "cannot read: " + err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return "", quote(path) + " is a directory, not a file"
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return "", "cannot read: " + err.Error()
	}
	if len(data) > maxKeyFileSize {
		return "", fmt.Sprintf("%s is larger than %d KiB, too large for an API key: is it the right file?", quote(path), maxKeyFileSize>>10)
	}
	key = strings.TrimSpace(string(data))
	switch {
	case key == "":
		return "", quote(path) + " is empty"
	case hasControl(key):
		return "", quote(path) + " holds more than one line or a control character; it must hold only the key"
	}
	return key, ""
}
