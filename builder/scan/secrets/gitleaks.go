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

var (
	leaksOnce sync.Once
	leaks     *detect.Detector
	leaksErr  error
)

// detector returns the gitleaks detector with its default configuration,
// built once. gitleaks logs through a package logger; it is silenced, as
// library code here never prints.
func detector() (*detect.Detector, error) {
	leaksOnce.Do(func() {
		logging.Logger = zerolog.Nop()
		v := viper.New()
		v.SetConfigType("toml")
		if leaksErr = v.ReadConfig(strings.NewReader(config.DefaultConfig)); leaksErr != nil {
			return
		}
		var vc config.ViperConfig
		if leaksErr = v.Unmarshal(&vc); leaksErr != nil {
			return
		}
		cfg, err := vc.Translate()
		if err != nil {
			leaksErr = err
			return
		}
		leaks = detect.NewDetector(cfg)
		leaks.MaxDecodeDepth = gitleaksDecodeDepth
	})
	return leaks, leaksErr
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
