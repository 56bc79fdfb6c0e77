package secrets

import (
	"bytes"
	"context"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
)

// GitleaksVersion is the gitleaks module whose default rule set the gate
// runs (its rules, keywords, entropy limits and allowlists, unchanged).
const GitleaksVersion = "v8.30.1"

// gitleaksDecodeDepth is how deep gitleaks decodes encoded text (base64,
// hex, percent): its CLI's default.
const gitleaksDecodeDepth = 5

// leaks is gitleaks' detector, loaded when a scan first needs it. Its
// rules take about 14 MB: a caller that scans for a while holds them
// (Hold), and the last release drops them for the garbage collector.
var leaks struct {
	mu    sync.Mutex
	holds int
	d     *detect.Detector
	err   error
}

// Hold keeps gitleaks' rule set loaded, once a scan loads it, until the
// returned release is called; without a hold it stays loaded once
// loaded. The last release of overlapping holds drops it.
func Hold() (release func()) {
	leaks.mu.Lock()
	leaks.holds++
	leaks.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			leaks.mu.Lock()
			defer leaks.mu.Unlock()
			if leaks.holds--; leaks.holds == 0 {
				leaks.d, leaks.err = nil, nil
			}
		})
	}
}

// detector returns the gitleaks detector with its default configuration,
// loaded if it is not. gitleaks logs through a package logger; it is
// silenced, as library code here never prints.
func detector() (*detect.Detector, error) {
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	if leaks.d == nil && leaks.err == nil {
		leaks.d, leaks.err = loadDetector()
	}
	return leaks.d, leaks.err
}

func loadDetector() (*detect.Detector, error) {
	logging.Logger = zerolog.Nop()
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		return nil, err
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, err
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, err
	}
	d := detect.NewDetector(cfg)
	d.MaxDecodeDepth = gitleaksDecodeDepth
	return d, nil
}

// gitleaksRules counts the rules of gitleaks' default set.
func gitleaksRules() int {
	d, err := detector()
	if err != nil {
		return 0
	}
	return len(d.Config.Rules)
}

// findGitleaks runs gitleaks' default rules on text; path lets its path
// rules and allowlists (lock files, go.sum, …) apply. Rules are named
// "gitleaks:<rule-id>".
func findGitleaks(path string, data []byte) []ruleMatch {
	d, err := detector()
	if err != nil {
		// The rule set is embedded: it fails for every input or none, and
		// a test (TestGitleaksRules) proves it loads.
		return nil
	}
	var out []ruleMatch
	for _, f := range d.DetectContext(context.Background(), detect.Fragment{Raw: string(data), FilePath: path}) {
		secret := f.Secret
		if secret == "" {
			secret = f.Match
		}
		off := bytes.Index(data, []byte(secret))
		if off < 0 {
			// Found in decoded text: point at the line gitleaks names.
			off = lineOffset(data, f.StartLine)
		}
		ctx := f.Match
		if i := strings.Index(ctx, secret); i >= 0 {
			ctx = ctx[:i]
		} else {
			ctx = ""
		}
		out = append(out, ruleMatch{"gitleaks:" + f.RuleID, match{off: off, secret: secret, context: ctx}})
	}
	return out
}

// lineOffset is the offset of the 0-based line n.
func lineOffset(data []byte, n int) int {
	off := 0
	for ; n > 0; n-- {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return off
		}
		off += i + 1
	}
	return off
}

// splitGeneric separates gitleaks' generic-api-key findings from those of
// its named rules.
func splitGeneric(ms []ruleMatch) (specific, generic []ruleMatch) {
	for _, m := range ms {
		if m.rule == "gitleaks:generic-api-key" {
			generic = append(generic, m)
		} else {
			specific = append(specific, m)
		}
	}
	return specific, generic
}
